using System.CommandLine;
using System.Globalization;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.ExtraNetworks;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion bake --model M --lora L:0.8 [--lora L2:te:unet ...] [--vae V] --out OUT.safetensors</c>: a new
/// checkpoint with the networks merged into its weights (the generation-time math) and optionally another VAE.
/// The output is checked against the checkpoint, every LoRA and the VAE (OutputGuard). Exit 0 written, 2 for bad usage
/// or a bad input (one line, no output file).
/// </summary>
internal sealed class BakeCommand : ICliCommand
{
    public Command Create(CliContext context)
    {
        var model = new Option<string>("--model") { Description = "The checkpoint", Required = true };
        var loras = new Option<string[]>("--lora") { Description = "PATH[:strength[:unet strength]] (A1111: text-encoder then U-Net strength); repeatable", AllowMultipleArgumentsPerToken = false };
        var vae = new Option<string?>("--vae") { Description = "A VAE to bake in" };
        var output = new Option<string>("--out") { Description = "Output .safetensors", Required = true };
        var command = new Command("bake", "Write a checkpoint with LoRAs (and a VAE) merged into its weights");
        foreach (var o in new Option[] { model, loras, vae, output }) command.Options.Add(o);
        command.SetAction(r => Run(context, r.GetValue(model)!, r.GetValue(loras) ?? [], r.GetValue(vae), r.GetValue(output)!));
        return command;
    }

    private static int Run(CliContext context, string model, string[] loraArgs, string? vae, string output)
    {
        var networks = new List<BakeNetwork>();
        try
        {
            foreach (var path in new[] { model }.Concat(vae == null ? [] : [vae]))
                if (!CheckpointFiles.Exists(path)) throw new ArgumentException($"{path}: no such file or diffusers folder");
            foreach (var arg in loraArgs) networks.Add(ParseLora(arg));
            if (networks.Count == 0 && vae == null) throw new ArgumentException("nothing to bake: give --lora and/or --vae");
        }
        catch (ArgumentException e)
        {
            return context.BadInput(e.Message);
        }
        try
        {
            var result = CheckpointBaker.Bake(model, networks, vae, output);
            foreach (var w in result.Warnings) context.Fail("warning: " + w);
            context.Output.WriteLine($"{output}: {result.Tensors} tensors, {result.PatchedTensors} patched by {networks.Count} network(s), {result.VaeTensors} from the VAE");
            return ExitCodes.Success;
        }
        catch (Exception e) when (ExitCodes.IsBadInput(e) || e is ArgumentException or InvalidOperationException)
        {
            // A network that does not fit the checkpoint is InvalidOperationException (NetworkWeightMath).
            return context.BadInput(e.Message);
        }
    }

    /// <summary>"path", "path:0.8" or "path:0.8:0.5": trailing numbers are the strengths (paths may contain ':').</summary>
    internal static BakeNetwork ParseLora(string arg)
    {
        var parts = arg.Split(':');
        var numbers = new List<double>();
        int end = parts.Length;
        while (end > 1 && numbers.Count < 2 && double.TryParse(parts[end - 1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
        {
            numbers.Insert(0, v);
            end--;
        }
        var path = string.Join(':', parts[..end]);
        if (!File.Exists(path)) throw new ArgumentException($"{path}: no such file");
        double te = numbers.Count > 0 ? numbers[0] : 1.0;
        double unet = numbers.Count > 1 ? numbers[1] : te;
        return new BakeNetwork(path, te, unet);
    }
}
