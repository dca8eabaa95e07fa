using SharpDiffusion.Architectures;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>What the denoiser's weights say about its family (null base when they cannot tell).</summary>
internal sealed record DenoiserFacts(BaseFamily? Base, int? InputChannels, List<string> Evidence, bool Found)
{
    /// <summary>Cross-attention context width (attn2.to_k in-features), when present.</summary>
    public int? Context { get; init; }

    /// <summary>The ADM / size-conditioning embedding that SDXL U-Nets have.</summary>
    public TensorInfo? Adm { get; init; }

    /// <summary>proj_in, whose form (1x1 conv vs linear) separates SD1 from SD2/SDXL layouts.</summary>
    public TensorInfo? ProjIn { get; init; }
}

/// <summary>
/// Tells SD1 / SD2 / SDXL / SDXL refiner / SD3 / Flux apart from a denoiser's keys and shapes, in both the LDM
/// layout (<c>input_blocks</c>, as in single-file checkpoints) and the diffusers layout (<c>down_blocks</c>).
/// Deciding signals, as in ComfyUI's model_detection: cross-attention context width (attn2.to_k in-features:
/// 768 SD1, 1024 SD2, 2048 SDXL, 1280 refiner), the ADM/label embedding input (2816 SDXL base, 2560 refiner),
/// model channels (320 / 384 refiner), 1x1-conv vs linear proj_in, and the MMDiT block names for SD3 / Flux.
/// </summary>
internal static class UnetFamilyDetector
{
    public static bool HasLdmUnet(TensorIndex index, string prefix) => index.Has(prefix + "input_blocks.0.0.weight")
        || (index.AnyWithPrefix(prefix + "input_blocks.") && index.AnyWithPrefix(prefix + "output_blocks."));

    public static bool HasDiffusersUnet(TensorIndex index, string prefix) => index.Has(prefix + "conv_in.weight")
        && (index.AnyWithPrefix(prefix + "down_blocks.") || index.AnyWithPrefix(prefix + "time_embedding."));

    public static bool HasMmdit(TensorIndex index, string prefix) => index.AnyWithPrefix(prefix + "joint_blocks.")
        || index.AnyWithPrefix(prefix + "double_blocks.") || index.AnyWithPrefix(prefix + "single_blocks.")
        || index.AnyWithPrefix(prefix + "single_transformer_blocks.")
        || (index.AnyWithPrefix(prefix + "transformer_blocks.") && index.Has(prefix + "context_embedder.weight"));

    public static DenoiserFacts Detect(TensorIndex index, string prefix)
    {
        if (HasMmdit(index, prefix)) return DetectMmdit(index, prefix);
        if (HasLdmUnet(index, prefix)) return DetectUnet(index, prefix, "input_blocks.0.0.weight", "label_emb.0.0.weight");
        if (HasDiffusersUnet(index, prefix)) return DetectUnet(index, prefix, "conv_in.weight", "add_embedding.linear_1.weight");
        return new DenoiserFacts(null, null, new List<string>(), false);
    }

    private static DenoiserFacts DetectUnet(TensorIndex index, string prefix, string convInKey, string admKey)
    {
        var evidence = new List<string>();
        var convIn = index.Get(prefix + convInKey);
        int? inChannels = convIn is { Rank: 4 } ? (int)convIn.Shape[1] : null;
        int? modelChannels = convIn is { Rank: 4 } ? (int)convIn.Shape[0] : null;

        TensorInfo? toK = null;
        TensorInfo? projIn = null;
        foreach (var t in index.Tensors)
        {
            if (!t.Name.StartsWith(prefix, StringComparison.Ordinal)) continue;
            if (toK == null && t.Rank == 2 && t.Name.EndsWith("attn2.to_k.weight", StringComparison.Ordinal)) toK = t;
            if (projIn == null && t.Name.EndsWith("proj_in.weight", StringComparison.Ordinal)) projIn = t;
            if (toK != null && projIn != null) break;
        }
        int? context = toK != null ? (int)toK.Shape[1] : null;
        var adm = index.Get(prefix + admKey);
        int? admIn = adm is { Rank: 2 } ? (int)adm.Shape[1] : null;

        var architecture = ModelArchitectures.Families.FirstOrDefault(a => a.AdmInputWidth is int w && w == admIn)
            ?? ModelArchitectures.Families.FirstOrDefault(a => a.ContextWidth is int c && c == context
                // 1280 is also a U-Net channel width: the refiner's context counts only with its own 384 channels.
                && (a.ModelChannels == ModelArchitecture.StandardModelChannels || a.ModelChannels == modelChannels));
        BaseFamily? family = architecture?.Family;
        if (architecture != null)
        {
            if (toK != null)
            {
                string encoders = string.Join(" + ", architecture.TextEncoders.Select(e => $"{e.Kind.DisplayName()} {e.Width}"));
                evidence.Add(Evidence.Key(toK, $"cross-attention context {context}" + (context == architecture.ContextWidth
                    ? $" ({architecture.FamilyName}: {encoders})" : "")));
            }
            if (adm != null && admIn == architecture.AdmInputWidth)
            {
                evidence.Add(Evidence.Key(adm, $"pooled text + size-conditioning embedding input {admIn} ({architecture.FamilyName})"));
            }
            if (convIn != null && architecture.ModelChannels != ModelArchitecture.StandardModelChannels)
            {
                evidence.Add(Evidence.Key(convIn, $"model channels {modelChannels} ({architecture.FamilyName} uses {architecture.ModelChannels})"));
            }
            if (projIn != null && architecture.AdmInputWidth == null)
            {
                evidence.Add(Evidence.Key(projIn, projIn.Rank == 4 ? "proj_in is a 1x1 conv" : "linear proj_in"));
            }
        }
        else if (toK != null)
        {
            evidence.Add(Evidence.Key(toK, $"cross-attention context {context} matches no known family"));
        }
        else
        {
            evidence.Add("no cross-attention (attn2.to_k) keys under '" + prefix + "': family cannot be told");
        }

        if (convIn != null && inChannels is int ic && ic != 4)
        {
            evidence.Add(Evidence.Key(convIn, $"{ic} input channels ({InputVariant(ic) ?? "non-standard"})"));
        }
        return new DenoiserFacts(family, inChannels, evidence, true) { Context = context, Adm = adm, ProjIn = projIn };
    }

    private static DenoiserFacts DetectMmdit(TensorIndex index, string prefix)
    {
        var evidence = new List<string>();
        var flux = index.FirstWithPrefix(prefix + "double_blocks.") ?? index.FirstWithPrefix(prefix + "single_blocks.")
            ?? index.FirstWithPrefix(prefix + "single_transformer_blocks.");
        if (flux != null)
        {
            evidence.Add(flux.Name + ": double-stream + single-stream MMDiT blocks (Flux)");
            var imgIn = index.Get(prefix + "img_in.weight") ?? index.Get(prefix + "x_embedder.weight");
            int? channels = imgIn is { Rank: 2 } ? (int)imgIn.Shape[1] : null;
            if (imgIn != null) evidence.Add(Evidence.Key(imgIn, $"patchified input {channels} = 16 latent channels x 2x2"));
            return new DenoiserFacts(BaseFamily.Flux, channels, evidence, true);
        }
        var joint = index.FirstWithPrefix(prefix + "joint_blocks.") ?? index.FirstWithPrefix(prefix + "transformer_blocks.");
        evidence.Add(joint!.Name + ": joint (MMDiT) blocks (SD3)");
        var xEmb = index.Get(prefix + "x_embedder.proj.weight") ?? index.Get(prefix + "pos_embed.proj.weight");
        int? inCh = xEmb is { Rank: 4 } ? (int)xEmb.Shape[1] : null;
        if (xEmb != null) evidence.Add(Evidence.Key(xEmb, $"{inCh} latent channels"));
        return new DenoiserFacts(BaseFamily.SD3, inCh, evidence, true);
    }

    public static string? InputVariant(int inputChannels) => ModelArchitectures.VariantOfInputChannels(inputChannels);
}
