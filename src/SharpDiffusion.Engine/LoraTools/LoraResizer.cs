using System.Globalization;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Workshop;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.LoraTools;

/// <summary>
/// Changes the rank of every LoRA module of a network file, as kohya sd-scripts <c>networks/resize_lora.py</c> does
/// with a fixed rank: W = up @ down (a CP/Tucker <c>lora_mid</c> is folded in), SVD in float32, up = U[:, :r] S[:r],
/// down = Vh[:r], alpha = (old alpha / old rank) * r so the scale of the change stays the same. Convolutions get the conv
/// rank. Modules that are not LoRA up/down pairs, and any other tensor, are copied unchanged (floats in the output precision).
/// </summary>
public static class LoraResizer
{
    public const string EnergyMetadataKey = "sharpdiffusion_resize_kept_energy_mean";

    public static LoraResizeResult Resize(string inputPath, string outputPath, LoraResizeOptions options, IProgress<LoraToolProgress>? progress = null)
    {
        if (options.Rank < 1 || options.ConvRank is < 1) throw new ArgumentOutOfRangeException(nameof(options), "ranks must be at least 1");
        OutputGuard.Check(outputPath, [inputPath]);
        using var file = ModelFileReader.Open(inputPath);
        var infos = file.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var modules = FindLoraModules(file.Tensors.Select(t => t.Name));
        if (modules.Count == 0) throw new InvalidModelFileException(inputPath, "holds no LoRA up/down pairs to resize");

        // Replacement tensors by original key (null: dropped), and alphas to add for modules that had none.
        var replaced = new Dictionary<string, LoraTensor?>(StringComparer.Ordinal);
        var addedAlpha = new Dictionary<string, LoraTensor>(StringComparer.Ordinal);
        var results = new List<ResizedModule>();
        var factors = new List<LowRankFactors>();
        try
        {
            for (int i = 0; i < modules.Count; i++)
            {
                var (name, roles) = modules[i];
                using var scope = NewDisposeScope();
                Tensor Read(string role) => TensorReading.Read(file, infos[roles[role]], ScalarType.Float32);
                var up = Read(NetworkTensorRoles.Up);
                var down = Read(NetworkTensorRoles.Down);
                var mid = roles.ContainsKey(NetworkTensorRoles.Mid) ? Read(NetworkTensorRoles.Mid) : null;
                double? alpha = roles.TryGetValue(NetworkTensorRoles.Alpha, out var alphaKey) ? Read(NetworkTensorRoles.Alpha).to(ScalarType.Float64).flatten()[0].item<double>() : null;
                var full = FullChange(inputPath, name, up, down, mid);
                long oldRank = down.shape[0];
                bool conv = full.dim() == 4;
                var f = LowRankFactorization.Factor(full, conv ? options.ConvRank ?? options.Rank : options.Rank, zeroMatrixRankOne: true);
                // The factors outlive this module's scope: they are written at the end (and disposed in finally).
                f.Up.DetachFromDisposeScope();
                f.Down.DetachFromDisposeScope();
                factors.Add(f);
                double scale = alpha is double a ? a / oldRank : 1.0;
                double newAlpha = scale * f.Rank;
                results.Add(new ResizedModule(name, oldRank, f.Rank, alpha, newAlpha, f.KeptEnergy));

                replaced[roles[NetworkTensorRoles.Up]] = LoraTensor.From(roles[NetworkTensorRoles.Up], f.Up);
                replaced[roles[NetworkTensorRoles.Down]] = LoraTensor.From(roles[NetworkTensorRoles.Down], f.Down);
                if (mid is not null) replaced[roles[NetworkTensorRoles.Mid]] = null;
                if (alphaKey != null) replaced[alphaKey] = LoraTensor.Scalar(alphaKey, (float)newAlpha);
                else addedAlpha[roles[NetworkTensorRoles.Down]] = LoraTensor.Scalar(name + ".alpha", (float)newAlpha);
                progress?.Report(new LoraToolProgress("svd", i + 1, modules.Count, name));
            }

            var floats = new List<LoraTensor>();
            var raw = new List<TensorToWrite>();
            foreach (var info in file.Tensors)
            {
                if (replaced.TryGetValue(info.Name, out var replacement))
                {
                    if (replacement != null) floats.Add(replacement);
                }
                else if (info.DType.IsFloatingPoint())
                {
                    floats.Add(new LoraTensor(info.Name, info.Shape, () =>
                    {
                        using var t = TensorReading.Read(file, info, ScalarType.Float32);
                        return t.contiguous().data<float>().ToArray();
                    }));
                }
                else
                {
                    raw.Add(TensorToWrite.FromModelFile(file, info));
                }
                if (addedAlpha.TryGetValue(info.Name, out var alphaTensor)) floats.Add(alphaTensor);
            }

            var result = new LoraResizeResult(results, file.Tensors.Count - replaced.Count, new Dictionary<string, string>());
            var metadata = Metadata(file, options, results, result.MeanKeptEnergy);
            LoraFileWriter.Write(outputPath, floats, options.OutputDType, metadata, progress, raw);
            return result with { Metadata = metadata };
        }
        finally
        {
            foreach (var f in factors) f.Dispose();
        }
    }

    /// <summary>LoRA modules (up + down, optional mid and alpha) by name, in file order, with their roles' keys.</summary>
    private static List<(string Name, Dictionary<string, string> Roles)> FindLoraModules(IEnumerable<string> keys)
    {
        var groups = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var key in keys)
        {
            if (!NetworkTensorRoles.TrySplit(key, out var module, out var role)) continue;
            if (!groups.TryGetValue(module, out var roles))
            {
                groups[module] = roles = new Dictionary<string, string>(StringComparer.Ordinal);
                order.Add(module);
            }
            roles.TryAdd(role, key);
        }
        return [.. order
            .Where(m => NetworkTensorRoles.Classify(groups[m].Keys) is { Algorithm: NetworkAlgorithm.LoRA })
            .Select(m => (m, groups[m]))];
    }

    /// <summary>up @ down (with mid folded in) shaped like the layer's weight: [out, in] or [out, in, kh, kw].</summary>
    private static Tensor FullChange(string path, string name, Tensor up, Tensor down, Tensor? mid)
    {
        long rank = down.shape[0], outDim = up.shape[0];
        var up2 = up.flatten(1);
        if (up2.shape[1] != rank || down.dim() < 2 || (mid is not null && (mid.dim() < 2 || mid.shape[0] != rank || mid.shape[1] != rank)))
            throw new InvalidModelFileException(path, $"module {name}: lora_up [{string.Join(", ", up.shape)}] and lora_down [{string.Join(", ", down.shape)}] do not agree on a rank");
        if (mid is null)
        {
            var product = up2.mm(down.flatten(1));
            return down.dim() == 2 ? product : product.reshape([outDim, .. down.shape[1..]]);
        }
        // CP/Tucker LoCon: dW[o, i, k..] = sum up[o, m] mid[m, n, k..] down[n, i]
        return einsum("m n ..., i m, n j -> i j ...", mid, up2, down.flatten(1));
    }

    /// <summary>The input's metadata with kohya's resize updates; stale sshs_* hashes removed; the mean kept energy added.</summary>
    private static Dictionary<string, string> Metadata(IModelFile file, LoraResizeOptions options, List<ResizedModule> modules, double meanEnergy)
    {
        var metadata = file.Format == ModelFormat.Safetensors
            ? new Dictionary<string, string>(file.Metadata, StringComparer.Ordinal)
            : new Dictionary<string, string>(StringComparer.Ordinal);
        metadata.Remove("sshs_model_hash");
        metadata.Remove("sshs_legacy_hash");
        long oldDim = modules.Max(m => m.OldRank);
        int convRank = options.ConvRank ?? options.Rank;
        string convText = convRank == options.Rank ? "" : $" (conv: {convRank})";
        metadata.TryGetValue("ss_training_comment", out var comment);
        metadata["ss_training_comment"] = $"dimension is resized from {oldDim} to {options.Rank}{convText}; {comment}";
        metadata["ss_network_dim"] = options.Rank.ToString(CultureInfo.InvariantCulture);
        // kohya writes the last module's alpha; the most common alpha of full-rank modules says the same for uniform files.
        var alpha = modules.Where(m => m.NewRank == options.Rank).DefaultIfEmpty(modules[^1])
            .GroupBy(m => m.NewAlpha).OrderByDescending(g => g.Count()).First().Key;
        metadata["ss_network_alpha"] = KohyaMetadataText.Float(alpha);
        metadata[EnergyMetadataKey] = meanEnergy.ToString("R", CultureInfo.InvariantCulture);
        return metadata;
    }
}
