using System.CommandLine;
using SharpDiffusion.Cli.Output;
using SharpDiffusion.Formats;
using SharpDiffusion.Conversion;
using SharpDiffusion.Hashing;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion merge --model-a A --model-b B [--model-c C] --mode weighted-sum|add-difference --multiplier M
/// [--block-weights LIST] [--vae V] [--precision fp32|fp16|bf16] --out OUT.safetensors</c>: A1111's Checkpoint
/// Merger, streamed (see <see cref="ModelMerger"/>). Exit 0 when written, 2 for bad usage or a bad input (one-line
/// reason, no output file).
/// </summary>
internal sealed class MergeCommand : ICliCommand
{
    public Command Create(CliContext context)
    {
        var modelA = new Option<string>("--model-a") { Description = "Primary model A (kept for keys only A has)", Required = true };
        var modelB = new Option<string>("--model-b") { Description = "Secondary model B", Required = true };
        var modelC = new Option<string>("--model-c") { Description = "Tertiary model C (add-difference: A + M (B - C))" };
        var mode = new Option<string>("--mode") { Description = "weighted-sum: (1-M) A + M B; add-difference: A + M (B - C)", DefaultValueFactory = _ => "weighted-sum" };
        mode.AcceptOnlyFromAmong("weighted-sum", "add-difference");
        var multiplier = new Option<double>("--multiplier") { Description = "M", Required = true };
        var blocks = new Option<string>("--block-weights")
        {
            Description = "Per-block multipliers: 26 values BASE,IN00..IN11,M00,OUT00..OUT11 (or 25 without BASE, which is then --multiplier)",
        };
        var vae = new Option<string>("--vae") { Description = "Bake this VAE into first_stage_model.*" };
        var precision = new Option<string>("--precision") { Description = "Store float tensors as fp32, fp16 or bf16 (default: as in A)" };
        precision.AcceptOnlyFromAmong([.. Precision.Names]);
        var output = new Option<string>("--out") { Description = "Output .safetensors file", Required = true };

        var command = new Command("merge", "Merge checkpoints (A1111 weighted sum / add difference, optional block weights and VAE)");
        foreach (var option in new Option[] { modelA, modelB, modelC, mode, multiplier, blocks, vae, precision, output }) command.Options.Add(option);
        command.SetAction(result => Run(context, new Request(
            result.GetValue(modelA)!, result.GetValue(modelB)!, result.GetValue(modelC), result.GetValue(mode)!,
            result.GetValue(multiplier), result.GetValue(blocks), result.GetValue(vae), result.GetValue(precision), result.GetValue(output)!)));
        return command;
    }

    private sealed record Request(string A, string B, string? C, string Mode, double Multiplier, string? BlockWeights,
        string? Vae, string? Precision, string Output);

    private static int Run(CliContext context, Request request)
    {
        var mergeMode = request.Mode == "add-difference" ? MergeMode.AddDifference : MergeMode.WeightedSum;
        if (mergeMode == MergeMode.AddDifference && request.C == null)
            return context.BadInput("--mode add-difference needs --model-c");
        if (mergeMode == MergeMode.WeightedSum && request.C != null)
            return context.BadInput("--model-c is only used by --mode add-difference");
        if (!double.IsFinite(request.Multiplier)) return context.BadInput("--multiplier must be a finite number");
        foreach (var path in new[] { request.A, request.B, request.C, request.Vae })
            if (path != null && !File.Exists(path) && !Directory.Exists(path)) return context.BadInput($"{path}: no such file");
        BlockWeights? blockWeights = null;
        if (request.BlockWeights != null)
        {
            try
            {
                blockWeights = BlockWeights.Parse(request.BlockWeights, request.Multiplier);
            }
            catch (FormatException e)
            {
                return context.BadInput("--block-weights: " + e.Message);
            }
        }
        TensorDType? dtype = null;
        if (request.Precision != null && Precision.TryParse(request.Precision, out var parsed)) dtype = parsed;

        var cache = new HashCache();
        var hashProgress = context.ErrorIsTerminal ? new HashProgress(context.CreateErrorConsole(), HashProgress.DefaultThresholdBytes) : null;
        var options = new MergeOptions
        {
            ModelA = request.A,
            ModelB = request.B,
            ModelC = request.C,
            Mode = mergeMode,
            Multiplier = request.Multiplier,
            BlockWeights = blockWeights,
            Vae = request.Vae,
            Precision = dtype,
            Output = request.Output,
            Hasher = path => Directory.Exists(path) ? CheckpointFiles.Hash(path) : cache.GetOrCompute(path, p => hashProgress == null
                ? ModelHashes.Compute(p)
                : hashProgress.Run(p, new FileInfo(p).Length, progress => ModelHashes.Compute(p, progress))),
        };
        return JobRunner.Run(context, "merging", request.Output, progress => ModelMerger.Merge(options, progress), result =>
        {
            cache.Save();
            string extra = result.VaeReplaced > 0 ? $", {result.VaeReplaced} from the VAE" : "";
            string kind = result.IsInpainting ? " (inpainting)" : result.IsInstructPix2Pix ? " (instruct-pix2pix)" : "";
            return $"{result.Output}: {result.Tensors} tensors, {result.Merged} merged, {result.KeptFromA} kept from A{extra}{kind}";
        });
    }
}
