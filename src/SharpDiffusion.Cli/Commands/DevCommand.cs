using System.CommandLine;
using System.Globalization;
using SharpDiffusion.Engine.Diagnostics;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion dev random-model --arch sd15 --out PATH.safetensors [--precision fp16|bf16|fp32] [--seed N]</c>:
/// developer tools. random-model writes a checkpoint with random weights in the real single-file layout (for
/// benchmarks and tests without a real model); precision-drift compares a checkpoint's bf16 results with its fp32 ones.
/// </summary>
internal sealed class DevCommand : ICliCommand
{
    public Command Create(CliContext context)
    {
        var arch = new Option<string>("--arch") { Description = "Architecture: " + string.Join(", ", RandomModelArchitecture.All.Select(a => a.Name)), DefaultValueFactory = _ => "sd15" };
        var output = new Option<string?>("--out", "-o") { Description = "The .safetensors file to write" };
        var precision = new Option<string>("--precision") { Description = "Storage type of the weights: fp16, bf16 or fp32", DefaultValueFactory = _ => "fp16" };
        var seed = new Option<long>("--seed") { Description = "Random seed (the same seed gives the same file)", DefaultValueFactory = _ => 0 };
        var randomModel = new Command("random-model", "Write a checkpoint with random weights in the real single-file layout");
        foreach (var option in new Option[] { arch, output, precision, seed }) randomModel.Options.Add(option);
        randomModel.SetAction(result => WriteRandomModel(context, result.GetValue(arch)!, result.GetValue(output), result.GetValue(precision)!, result.GetValue(seed)));

        var model = new Option<string?>("--model", "-m") { Description = "The checkpoint to measure" };
        var size = new Option<int>("--size") { Description = "Square image size in pixels", DefaultValueFactory = _ => 256 };
        var steps = new Option<int>("--steps") { Description = "Guided Euler steps of the sampling comparison", DefaultValueFactory = _ => 4 };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "CLIP vocabulary (else searched; fixed token ids when none is found)" };
        var config = new Option<string?>("--config") { Description = "The model's LDM config (else beside the checkpoint, else detected)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var drift = new Command("precision-drift", "How far bf16 results lie from fp32 for a checkpoint (U-Net eval, short sampling run, VAE decode)");
        foreach (var option in new Option[] { model, config, size, steps, tokenizer, json }) drift.Options.Add(option);
        drift.SetAction(result => MeasureDrift(context, result.GetValue(model), result.GetValue(size), result.GetValue(steps), result.GetValue(tokenizer), result.GetValue(config), result.GetValue(json)));

        var command = new Command("dev", "Developer tools (random-model, precision-drift, emoji-dataset, emoji-list, eval-emoji)");
        command.Subcommands.Add(randomModel);
        command.Subcommands.Add(drift);
        command.Subcommands.Add(EmojiDatasetCommands.CreateDataset(context));
        command.Subcommands.Add(EmojiDatasetCommands.CreateList(context));
        command.Subcommands.Add(EmojiDatasetCommands.CreateEvaluation(context));
        return command;
    }

    private static int MeasureDrift(CliContext context, string? model, int size, int steps, string? tokenizer, string? config, bool json)
    {
        IReadOnlyList<DriftFigure> figures;
        try
        {
            if (string.IsNullOrEmpty(model)) throw new ArgumentException("--model is required (a checkpoint; `dev random-model` writes one)");
            if (!File.Exists(model)) throw new ArgumentException($"{model}: no such file");
            figures = PrecisionDrift.Measure(model, size, steps, tokenizer, config, line => context.Error.WriteLine(line));
        }
        catch (Exception e) when (e is ArgumentException || ExitCodes.IsBadInput(e))
        {
            return context.BadInput(e.Message);
        }
        if (json)
        {
            var values = figures.ToDictionary(f => f.Stage, f => new { relative_rms = f.RelativeRms, max_abs = f.MaxAbs });
            context.Output.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { model, size, steps, drift = values }));
        }
        else
        {
            foreach (var f in figures)
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{f.Stage,-16} bf16 vs fp32: rms diff {f.RelativeRms:P3} of rms, max abs {f.MaxAbs:G4}"));
        }
        return ExitCodes.Success;
    }

    private static int WriteRandomModel(CliContext context, string archName, string? output, string precisionText, long seed)
    {
        RandomModelArchitecture arch;
        Formats.TensorDType precision;
        try
        {
            arch = RandomModelArchitecture.Parse(archName);
            precision = RandomModel.ParsePrecision(precisionText);
            if (string.IsNullOrEmpty(output)) throw new ArgumentException("--out is required (the .safetensors file to write)");
        }
        catch (ArgumentException e)
        {
            return context.BadInput(e.Message);
        }
        try
        {
            OutputGuard.Check(output, []); // the folder must exist: outputs never create folders
            RandomModel.Write(output, arch, precision, seed);
        }
        catch (Exception e) when (ExitCodes.IsBadInput(e))
        {
            return context.BadInput(e.Message);
        }
        var size = new FileInfo(output).Length;
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{output}: random {arch.Name} checkpoint, {precisionText.ToLowerInvariant()} weights, seed {seed}, {size / (1024.0 * 1024.0):F1} MiB"));
        return ExitCodes.Success;
    }
}
