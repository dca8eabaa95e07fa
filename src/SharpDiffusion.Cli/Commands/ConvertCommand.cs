using System.CommandLine;
using SharpDiffusion.Formats;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion convert IN --out OUT.safetensors [--precision fp32|fp16|bf16] [--prune] [--ema-only]</c>: any
/// readable model (.ckpt/.pt included) to safetensors (see <see cref="CheckpointConverter"/>). Exit 0 when written,
/// 1 when the job failed (one-line reason, no output file), 2 for bad usage.
/// </summary>
internal sealed class ConvertCommand : ICliCommand
{
    public Command Create(CliContext context)
    {
        var input = new Argument<string>("IN") { Description = "Model file to convert (.ckpt, .pt, .safetensors, ...)" };
        var output = new Option<string>("--out") { Description = "Output .safetensors file (never the input)", Required = true };
        var precision = new Option<string>("--precision") { Description = "Store float tensors as fp32, fp16 or bf16 (integers are kept)" };
        precision.AcceptOnlyFromAmong([.. Precision.Names]);
        var prune = new Option<bool>("--prune") { Description = "Drop EMA (model_ema.*), loss.* and optimizer tensors; keep the DDPM buffers" };
        var emaOnly = new Option<bool>("--ema-only") { Description = "Use the EMA weights as the model weights and drop model_ema.*" };

        var command = new Command("convert", "Convert a model to .safetensors (precision, prune, EMA-only)");
        command.Arguments.Add(input);
        foreach (var option in new Option[] { output, precision, prune, emaOnly }) command.Options.Add(option);
        command.SetAction(result => Run(context, result.GetValue(input)!, result.GetValue(output)!, result.GetValue(precision),
            result.GetValue(prune), result.GetValue(emaOnly)));
        return command;
    }

    private static int Run(CliContext context, string input, string output, string? precision, bool prune, bool emaOnly)
    {
        if (!File.Exists(input) && !Directory.Exists(input))
            return MergeCommand.Usage(context, input.StartsWith('-') ? $"unknown option '{input}'" : $"{input}: no such file");
        TensorDType? dtype = null;
        if (precision != null && Precision.TryParse(precision, out var parsed)) dtype = parsed;
        var options = new ConvertOptions { Input = input, Output = output, Precision = dtype, Prune = prune, EmaOnly = emaOnly };
        return MergeCommand.RunJob(context, "converting", output, progress => CheckpointConverter.Convert(options, progress), result =>
        {
            string ema = emaOnly ? $", {result.FromEma} from EMA" : "";
            string changed = dtype != null ? $", {result.PrecisionChanged} changed to {precision}" : "";
            return $"{result.Output}: {result.Tensors} tensors, {result.Dropped} dropped{ema}{changed}";
        });
    }
}
