using System.CommandLine;
using SharpDiffusion.Formats;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion convert IN --out OUT [--to safetensors|diffusers] [--precision fp32|fp16|bf16] [--prune] [--ema-only]</c>:
/// any readable model (.ckpt/.pt, a diffusers folder) to one .safetensors file (see <see cref="CheckpointConverter"/>),
/// or an SD1.x single-file checkpoint to a diffusers folder (see <see cref="DiffusersExporter"/>). Without --to the
/// output decides, as kohya's convert_diffusers20_original_sd.py does: an existing folder or a name without an
/// extension is a diffusers folder, anything else a single file. Exit 0 when written, 2 for bad usage or a bad input
/// (one-line reason, no output).
/// </summary>
internal sealed class ConvertCommand : ICliCommand
{
    public Command Create(CliContext context)
    {
        var input = new Argument<string>("IN") { Description = "Model file to convert (.ckpt, .pt, .safetensors, ...)" };
        var output = new Option<string>("--out")
        {
            Description = "Output: a .safetensors file, or a new/empty folder for --to diffusers (never the input)", Required = true,
        };
        var to = new Option<string>("--to")
        {
            Description = "Output layout: safetensors (one file) or diffusers (a StableDiffusionPipeline folder, SD1.x). "
                + "Default: diffusers when --out is an existing folder or has no extension, else safetensors",
        };
        to.AcceptOnlyFromAmong("safetensors", "diffusers");
        var precision = new Option<string>("--precision") { Description = "Store float tensors as fp32, fp16 or bf16 (integers are kept)" };
        precision.AcceptOnlyFromAmong([.. Precision.Names]);
        var prune = new Option<bool>("--prune") { Description = "Drop EMA (model_ema.*), loss.* and optimizer tensors; keep the DDPM buffers" };
        var emaOnly = new Option<bool>("--ema-only") { Description = "Use the EMA weights as the model weights and drop model_ema.*" };

        var command = new Command("convert", "Convert a model to .safetensors (precision, prune, EMA-only), or an SD1.x checkpoint to a diffusers folder");
        command.Arguments.Add(input);
        foreach (var option in new Option[] { output, to, precision, prune, emaOnly }) command.Options.Add(option);
        command.SetAction(result => Run(context, result.GetValue(input)!, result.GetValue(output)!, result.GetValue(to), result.GetValue(precision),
            result.GetValue(prune), result.GetValue(emaOnly)));
        return command;
    }

    /// <summary>--to when given; else a diffusers folder for an existing folder or an extension-less name (kohya's rule).</summary>
    internal static bool WantsDiffusers(string output, string? to) =>
        to != null ? to == "diffusers" : Directory.Exists(output) || Path.GetExtension(output.TrimEnd(Path.DirectorySeparatorChar)).Length == 0;

    private static int Run(CliContext context, string input, string output, string? to, string? precision, bool prune, bool emaOnly)
    {
        if (!File.Exists(input) && !Directory.Exists(input))
            return context.BadInput(input.StartsWith('-') ? $"unknown option '{input}'" : $"{input}: no such file");
        TensorDType? dtype = null;
        if (precision != null && Precision.TryParse(precision, out var parsed)) dtype = parsed;
        var options = new ConvertOptions { Input = input, Output = output, Precision = dtype, Prune = prune, EmaOnly = emaOnly };
        if (WantsDiffusers(output, to))
        {
            return JobRunner.Run(context, "converting", output, progress => DiffusersExporter.Export(options, progress), result =>
            {
                string ema = emaOnly ? $", {result.FromEma} from EMA" : "";
                string changed = dtype != null ? $", {result.PrecisionChanged} changed to {precision}" : "";
                string tokenizer = result.TokenizerWritten ? ""
                    : "; tokenizer/ not written (no vocab.json + merges.txt beside the input; copy openai/clip-vit-large-patch14's tokenizer files there)";
                return $"{result.Output}: diffusers folder with {string.Join(", ", result.Folders.Select(f => f + "/"))} and model_index.json; "
                    + $"{result.Tensors} tensors, {result.Dropped} dropped{ema}{changed}{tokenizer}";
            });
        }
        return JobRunner.Run(context, "converting", output, progress => CheckpointConverter.Convert(options, progress), result =>
        {
            string ema = emaOnly ? $", {result.FromEma} from EMA" : "";
            string changed = dtype != null ? $", {result.PrecisionChanged} changed to {precision}" : "";
            return $"{result.Output}: {result.Tensors} tensors, {result.Dropped} dropped{ema}{changed}";
        });
    }
}
