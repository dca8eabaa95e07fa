using SharpDiffusion.Architectures;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Conversion;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>
/// A standalone VAE replacing a checkpoint's, as A1111 loads it: keys bare (<c>encoder.</c>, <c>decoder.</c>,
/// <c>quant_conv.</c>, <c>post_quant_conv.</c>) or under <c>first_stage_model.</c>; training leftovers (<c>loss.*</c>,
/// EMA counters) ignored; anything else must match the model exactly.
/// </summary>
public static class VaeOverride
{
    private static readonly string[] PairedExtensions = { ".vae.pt", ".vae.ckpt", ".vae.safetensors" };

    /// <summary>A1111's auto-pairing: "NAME.vae.pt" / ".vae.ckpt" / ".vae.safetensors" beside "NAME.safetensors"; null if none.</summary>
    public static string? FindPaired(string checkpointPath)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(checkpointPath)) ?? ".";
        var stem = Path.GetFileNameWithoutExtension(checkpointPath);
        return PairedExtensions.Select(ext => Path.Combine(directory, stem + ext)).FirstOrDefault(File.Exists);
    }

    public static void Load(AutoencoderKL vae, string vaePath)
    {
        using var file = CheckpointFiles.Open(vaePath); // a diffusers VAE folder arrives as first_stage_model.*
        string prefix = file.Tensors.Any(t => t.Name.StartsWith(LdmPrefixes.Vae, StringComparison.Ordinal))
            ? LdmPrefixes.Vae
            : "";
        var ignore = file.Tensors.Select(t => t.Name)
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal))
            .Select(n => n[prefix.Length..])
            .Where(IsTrainingLeftover)
            .ToHashSet(StringComparer.Ordinal);
        StrictLoader.Load(vae, file, prefix, ignore);
    }

    private static bool IsTrainingLeftover(string key) =>
        key.StartsWith("loss.", StringComparison.Ordinal) || key is "model_ema.decay" or "model_ema.num_updates";
}
