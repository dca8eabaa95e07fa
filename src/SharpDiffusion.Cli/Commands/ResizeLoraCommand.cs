using System.CommandLine;
using System.Globalization;
using SharpDiffusion.Engine.LoraTools;
using SharpDiffusion.Cli.Output;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion resize-lora IN --rank R [--conv-rank R2] [--precision fp32|fp16|bf16] --out OUT</c>: re-factor every
/// LoRA module at a new rank (kohya resize_lora.py, fixed rank), printing the energy each module keeps.
/// Exit 0 when written, 2 for bad usage or a bad input (nothing written).
/// </summary>
internal sealed class ResizeLoraCommand : ICliCommand
{
    public Command Create(CliContext context)
    {
        var input = new Argument<string>("IN") { Description = "The LoRA file to resize" };
        var rank = new Option<int>("--rank") { Description = "New rank of linear layers (alpha scaled to keep the strength)", Required = true };
        var convRank = new Option<int?>("--conv-rank") { Description = "New rank of convolution layers (default: --rank)" };
        var precision = new Option<string>("--precision") { Description = "Storage precision: fp32, fp16 or bf16", DefaultValueFactory = _ => "fp32" };
        var output = new Option<string>("--out") { Description = "The LoRA file to write (.safetensors)", Required = true };
        var command = new Command("resize-lora", "Change a LoRA's rank by SVD of each module's up @ down");
        command.Arguments.Add(input);
        foreach (var option in new Option[] { rank, convRank, precision, output }) command.Options.Add(option);
        command.SetAction(result => Run(context, result.GetValue(input)!, result.GetValue(output)!, result.GetValue(rank),
            result.GetValue(convRank), result.GetValue(precision)!));
        return command;
    }

    private static int Run(CliContext context, string inputPath, string outputPath, int rank, int? convRank, string precision)
    {
        string? problem = null;
        if (!File.Exists(inputPath)) problem = $"{inputPath}: no such file";
        if (rank < 1 || convRank is < 1) problem ??= "--rank and --conv-rank must be at least 1";
        if (!LoraPrecision.TryParse(precision, out var dtype)) problem ??= $"--precision must be one of {string.Join(", ", LoraPrecision.Names)}";
        if (problem != null) return context.BadInput(problem);

        LoraResizeResult result;
        try
        {
            // The output is checked against the input (OutputGuard) before any work.
            var options = new LoraResizeOptions { Rank = rank, ConvRank = convRank, OutputDType = dtype };
            result = LoraResizer.Resize(inputPath, outputPath, options, context.ErrorIsTerminal ? new StatusLineProgress(context.Error) : null);
        }
        catch (Exception e) when (ExitCodes.IsBadInput(e))
        {
            return context.BadInput(e.Message);
        }
        var culture = CultureInfo.InvariantCulture;
        int width = Math.Max(6, result.Modules.Max(m => m.Name.Length));
        context.Output.WriteLine($"{"module".PadRight(width)}  rank     alpha       kept energy");
        foreach (var m in result.Modules)
        {
            string alpha = string.Create(culture, $"{(m.OldAlpha is double a ? a.ToString("G4", culture) : "-")}->{m.NewAlpha:G4}");
            context.Output.WriteLine(string.Create(culture, $"{m.Name.PadRight(width)}  {$"{m.OldRank}->{m.NewRank}",-7}  {alpha,-10}  {m.KeptEnergy:P3}"));
        }
        context.Output.WriteLine(string.Create(culture,
            $"{result.Modules.Count} modules resized, {result.CopiedTensors} other tensors copied; mean kept energy {result.MeanKeptEnergy:P3}"));
        context.Output.WriteLine($"wrote {outputPath}");
        return ExitCodes.Success;
    }
}
