using System.Globalization;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Workshop;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.LoraTools;

/// <summary>
/// Extracts a LoRA from a fine-tuned SD 1.x checkpoint and its base, as kohya sd-scripts
/// <c>networks/extract_lora_from_models.py</c> does: for every LoRANetwork layer, SVD of (tuned - base) in float32,
/// up = U[:, :r] S[:r], down = Vh[:r], both clamped at the clamp quantile, alpha = r; text-encoder layers are dropped
/// when no text-encoder weight differs by more than MinDiff. Inputs are read one tensor at a time and never modified.
/// </summary>
public static class LoraExtractor
{
    public static LoraExtractionResult Extract(string basePath, string tunedPath, string outputPath, LoraExtractionOptions options,
        IProgress<LoraToolProgress>? progress = null)
    {
        Validate(options);
        OutputGuard.Check(outputPath, [basePath, tunedPath]);
        using var baseFile = CheckpointFiles.Open(basePath);
        using var tunedFile = CheckpointFiles.Open(tunedPath);
        var targets = ExtractionTargets.ForSd1Checkpoint(baseFile, options.ConvRank != null);
        ExtractionTargets.RequireSd1(tunedFile);
        var baseInfos = baseFile.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var tunedInfos = tunedFile.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var target in targets)
        {
            var b = baseInfos[target.WeightKey];
            if (!tunedInfos.TryGetValue(target.WeightKey, out var t))
                throw new InvalidModelFileException(tunedPath, $"has no tensor {target.WeightKey}: not the same architecture as {basePath}");
            if (!t.Shape.SequenceEqual(b.Shape))
                throw new InvalidModelFileException(tunedPath,
                    $"tensor {target.WeightKey} is [{string.Join(", ", t.Shape)}], the base has [{string.Join(", ", b.Shape)}]: not the same architecture");
        }

        Tensor Difference(ExtractionTarget target)
        {
            using var scope = NewDisposeScope();
            var a = TensorReading.Read(baseFile, baseInfos[target.WeightKey], ScalarType.Float32);
            var b = TensorReading.Read(tunedFile, tunedInfos[target.WeightKey], ScalarType.Float32);
            return (b - a).MoveToOuterDisposeScope();
        }

        // kohya compares the text encoders first: one layer above min_diff makes them "different".
        var textTargets = targets.Where(t => t.IsTextEncoder).ToList();
        double textMaxDiff = 0;
        for (int i = 0; i < textTargets.Count; i++)
        {
            using var diff = Difference(textTargets[i]);
            textMaxDiff = Math.Max(textMaxDiff, diff.abs().max().item<float>());
            progress?.Report(new LoraToolProgress("compare", i + 1, textTargets.Count, textTargets[i].ModuleName));
        }
        bool withTextEncoder = textMaxDiff > options.MinDiff;
        var chosen = withTextEncoder ? targets : targets.Where(t => !t.IsTextEncoder).ToList();

        var modules = new List<(string Name, LowRankFactors Factors)>(chosen.Count);
        try
        {
            double energy = 0, unetMaxDiff = 0;
            for (int i = 0; i < chosen.Count; i++)
            {
                var target = chosen[i];
                int rank = target.IsConv3x3 && options.ConvRank is int convRank ? convRank : options.Rank;
                using (var diff = Difference(target))
                {
                    if (!target.IsTextEncoder) unetMaxDiff = Math.Max(unetMaxDiff, diff.abs().max().item<float>());
                    var factors = LowRankFactorization.Factor(diff, rank, options.ClampQuantile);
                    modules.Add((target.ModuleName, factors));
                    energy += factors.KeptEnergy;
                }
                progress?.Report(new LoraToolProgress("svd", i + 1, chosen.Count, target.ModuleName));
            }

            var metadata = Metadata(outputPath, options);
            LoraFileWriter.Write(outputPath, [.. modules.SelectMany(m => new[]
            {
                LoraTensor.From(m.Name + ".lora_up.weight", m.Factors.Up),
                LoraTensor.From(m.Name + ".lora_down.weight", m.Factors.Down),
                // kohya: alpha = the module's own rank (scale 1), a 0-d tensor in the save precision.
                LoraTensor.Scalar(m.Name + ".alpha", m.Factors.Rank),
            })], options.OutputDType, metadata, progress);
            int textCount = chosen.Count(t => t.IsTextEncoder);
            return new LoraExtractionResult(chosen.Count - textCount, textCount, textMaxDiff, unetMaxDiff,
                chosen.Count == 0 ? 1.0 : energy / chosen.Count, metadata);
        }
        finally
        {
            foreach (var (_, factors) in modules) factors.Dispose();
        }
    }

    private static void Validate(LoraExtractionOptions options)
    {
        if (options.Rank < 1) throw new ArgumentOutOfRangeException(nameof(options), "rank must be at least 1");
        if (options.ConvRank is < 1) throw new ArgumentOutOfRangeException(nameof(options), "conv rank must be at least 1");
        if (options.ClampQuantile is <= 0 or > 1 || double.IsNaN(options.ClampQuantile))
            throw new ArgumentOutOfRangeException(nameof(options), "clamp quantile must be in (0, 1]");
        if (options.MinDiff < 0 || double.IsNaN(options.MinDiff)) throw new ArgumentOutOfRangeException(nameof(options), "min diff must be >= 0");
    }

    /// <summary>kohya's minimum ss_* metadata plus the SAI model spec keys it adds for an SD 1.x LoRA.</summary>
    private static Dictionary<string, string> Metadata(string outputPath, LoraExtractionOptions options)
    {
        var networkArgs = new Dictionary<string, string>();
        if (options.ConvRank is int conv)
        {
            networkArgs["conv_dim"] = conv.ToString(CultureInfo.InvariantCulture);
            networkArgs["conv_alpha"] = KohyaMetadataText.Float(conv);
        }
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ss_v2"] = "False",
            ["ss_base_model_version"] = "sd_v1",
            ["ss_network_module"] = "networks.lora",
            ["ss_network_dim"] = options.Rank.ToString(CultureInfo.InvariantCulture),
            ["ss_network_alpha"] = KohyaMetadataText.Float(options.Rank),
            ["ss_network_args"] = KohyaMetadataText.JsonDumps(networkArgs),
            ["modelspec.sai_model_spec"] = "1.0.0",
            ["modelspec.architecture"] = "stable-diffusion-v1/lora",
            ["modelspec.implementation"] = "diffusers",
            ["modelspec.title"] = Path.GetFileNameWithoutExtension(outputPath),
            ["modelspec.resolution"] = "512x512",
            ["modelspec.date"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture),
            ["sharpdiffusion_extract_clamp_quantile"] = options.ClampQuantile.ToString("R", CultureInfo.InvariantCulture),
        };
    }
}
