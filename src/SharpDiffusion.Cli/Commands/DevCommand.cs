using System.CommandLine;
using System.Globalization;
using SharpDiffusion.Engine.Pipeline;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion dev random-model --arch sd15 --out PATH.safetensors [--precision fp16|bf16|fp32] [--seed N]</c>:
/// developer tools. random-model writes a checkpoint with random weights in the real single-file layout (for
/// benchmarks and tests without a real model).
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

        var command = new Command("dev", "Developer tools (random-model)");
        command.Subcommands.Add(randomModel);
        return command;
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
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }
        try
        {
            var folder = Path.GetDirectoryName(Path.GetFullPath(output));
            if (folder != null) Directory.CreateDirectory(folder);
            RandomModel.Write(output, arch, precision, seed);
        }
        catch (IOException e)
        {
            context.Fail($"{output}: {e.Message}");
            return ExitCodes.InvalidInput;
        }
        catch (UnauthorizedAccessException e)
        {
            context.Fail($"{output}: {e.Message}");
            return ExitCodes.InvalidInput;
        }
        var size = new FileInfo(output).Length;
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{output}: random {arch.Name} checkpoint, {precisionText.ToLowerInvariant()} weights, seed {seed}, {size / (1024.0 * 1024.0):F1} MiB"));
        return ExitCodes.Success;
    }
}
