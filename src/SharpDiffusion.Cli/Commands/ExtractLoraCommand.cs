using System.CommandLine;
using System.Globalization;
using SharpDiffusion.Engine.LoraTools;
using SharpDiffusion.Cli.Output;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion extract-lora --base A --tuned B --rank R [--conv-rank R2] [--clamp-quantile Q] [--min-diff D]
/// [--precision fp32|fp16|bf16] --out L.safetensors</c>: a kohya-style LoRA approximating B - A (SD 1.x checkpoints).
/// Exit 0 when written, 2 for bad usage or a bad input (nothing written).
/// </summary>
internal sealed class ExtractLoraCommand : ICliCommand
{
    public Command Create(CliContext context)
    {
        var basePath = new Option<string>("--base") { Description = "The original checkpoint (SD 1.x, single file)", Required = true };
        var tuned = new Option<string>("--tuned") { Description = "The fine-tuned checkpoint: the LoRA is tuned - base", Required = true };
        var rank = new Option<int>("--rank") { Description = "LoRA rank of linear and 1x1 layers (alpha = rank)", Required = true };
        var convRank = new Option<int?>("--conv-rank") { Description = "Also extract 3x3 convolutions (LoCon) at this rank" };
        var clamp = new Option<double>("--clamp-quantile") { Description = "Clamp up/down values at this quantile (1 = no clamp)", DefaultValueFactory = _ => 0.99 };
        var minDiff = new Option<double>("--min-diff") { Description = "Skip the text encoder unless a weight differs by more than this", DefaultValueFactory = _ => 0.01 };
        var precision = new Option<string>("--precision") { Description = "Storage precision: fp32, fp16 or bf16", DefaultValueFactory = _ => "fp32" };
        var output = new Option<string>("--out") { Description = "The LoRA file to write (.safetensors)", Required = true };
        var command = new Command("extract-lora", "Extract a LoRA from the difference between a fine-tuned checkpoint and its base (SVD)");
        foreach (var option in new Option[] { basePath, tuned, rank, convRank, clamp, minDiff, precision, output }) command.Options.Add(option);
        command.SetAction(result => Run(context, result.GetValue(basePath)!, result.GetValue(tuned)!, result.GetValue(output)!,
            result.GetValue(rank), result.GetValue(convRank), result.GetValue(clamp), result.GetValue(minDiff), result.GetValue(precision)!));
        return command;
    }

    private static int Run(CliContext context, string basePath, string tunedPath, string outputPath, int rank, int? convRank,
        double clampQuantile, double minDiff, string precision)
    {
        string? problem = null;
        foreach (var input in new[] { basePath, tunedPath })
            if (!File.Exists(input) && !Directory.Exists(input)) problem ??= $"{input}: no such file or folder";
        if (rank < 1 || convRank is < 1) problem ??= "--rank and --conv-rank must be at least 1";
        if (clampQuantile is <= 0 or > 1 || double.IsNaN(clampQuantile)) problem ??= "--clamp-quantile must be in (0, 1]";
        if (minDiff < 0 || double.IsNaN(minDiff)) problem ??= "--min-diff must not be negative";
        if (!LoraPrecision.TryParse(precision, out var dtype)) problem ??= $"--precision must be one of {string.Join(", ", LoraPrecision.Names)}";
        if (problem != null) return context.BadInput(problem);

        var options = new LoraExtractionOptions { Rank = rank, ConvRank = convRank, ClampQuantile = clampQuantile, MinDiff = minDiff, OutputDType = dtype };
        LoraExtractionResult result;
        try
        {
            // The output is checked against the inputs (OutputGuard) before any work.
            result = LoraExtractor.Extract(basePath, tunedPath, outputPath, options, context.ErrorIsTerminal ? new StatusLineProgress(context.Error) : null);
        }
        catch (Exception e) when (ExitCodes.IsBadInput(e))
        {
            return context.BadInput(e.Message);
        }
        var culture = CultureInfo.InvariantCulture;
        string textEncoder = result.TextEncoderModules > 0
            ? string.Create(culture, $"> {minDiff:G4}, {result.TextEncoderModules} modules extracted")
            : string.Create(culture, $"<= {minDiff:G4}, skipped (U-Net only)");
        context.Output.WriteLine(string.Create(culture, $"text encoder: max difference {result.TextEncoderMaxDiff:G4} {textEncoder}"));
        context.Output.WriteLine(string.Create(culture, $"U-Net: max difference {result.UnetMaxDiff:G4}, {result.UnetModules} modules extracted"));
        if (result.UnetMaxDiff == 0 && result.TextEncoderModules == 0)
            context.Error.WriteLine("sharpdiffusion: warning: the checkpoints do not differ in any LoRA layer; the LoRA changes nothing");
        context.Output.WriteLine(string.Create(culture, $"rank {rank}{(convRank is int c ? $", conv rank {c}" : "")}, mean kept energy {result.MeanKeptEnergy:P2}"));
        context.Output.WriteLine($"wrote {outputPath}");
        return ExitCodes.Success;
    }
}
