using SharpDiffusion.Architectures;
namespace SharpDiffusion.Inspection;

/// <summary>
/// Full models and their parts: single-file checkpoints (LDM <c>model.diffusion_model.*</c> /
/// <c>first_stage_model.*</c> / <c>cond_stage_model.*</c> or <c>conditioner.embedders.N.*</c>; SD3
/// <c>text_encoders.*</c>), diffusers folders (<c>unet/</c>, <c>vae/</c>, <c>text_encoder/</c> ...), and files
/// holding one part only (kind unet, vae or text_encoder).
/// </summary>
internal static class CheckpointDetector
{
    private static readonly string[] DenoiserPrefixes = { LdmPrefixes.Unet, "unet/", "transformer/" };

    /// <summary>Every family's single-file text-encoder prefixes (from the registry), then the diffusers folders'.</summary>
    private static readonly (string Prefix, string Component)[] EncoderPrefixes =
    [
        .. ModelArchitectures.TextEncoderPrefixes,
        ("text_encoder/", "text_encoder"),
        ("text_encoder_2/", "text_encoder_2"),
        ("text_encoder_3/", "text_encoder_3"),
    ];

    private static readonly string[] VaePrefixes = { LdmPrefixes.Vae, "vae/" };

    public static bool TryDetect(TensorIndex index, ModelClassification result)
    {
        DenoiserFacts? denoiser = null;
        string? denoiserPrefix = null;
        foreach (var p in DenoiserPrefixes)
        {
            var facts = UnetFamilyDetector.Detect(index, p);
            if (facts.Found) { denoiser = facts; denoiserPrefix = p; break; }
        }

        var encoders = new List<(TextEncoderFacts Facts, string Component)>();
        foreach (var (p, component) in EncoderPrefixes)
        {
            if (!index.AnyWithPrefix(p)) continue;
            var facts = TextEncoderDetector.At(index, p);
            if (facts != null && !encoders.Any(e => e.Component == component)) encoders.Add((facts, component));
        }

        VaeFacts? vae = null;
        foreach (var p in VaePrefixes)
        {
            vae = VaeDetector.At(index, p);
            if (vae != null) break;
        }

        bool prefixed = denoiser != null || encoders.Count > 0 || vae != null;
        if (!prefixed) return TryDetectBarePart(index, result);

        if (denoiser != null) result.Components.Add(DenoiserComponent(denoiser));
        foreach (var e in encoders.OrderBy(e => e.Component, StringComparer.Ordinal)) result.Components.Add(e.Component);
        if (vae != null) result.Components.Add("vae");
        result.Components.Sort(StringComparer.Ordinal);

        result.Kind = denoiser != null && (encoders.Count > 0 || vae != null) ? ModelKind.Checkpoint
            : denoiser != null ? ModelKind.Unet
            : encoders.Count > 0 && vae == null ? ModelKind.TextEncoder
            : vae != null && encoders.Count == 0 ? ModelKind.Vae
            : ModelKind.Checkpoint;

        if (index.File.Format == Formats.ModelFormat.Diffusers || denoiserPrefix is "unet/" or "transformer/")
        {
            Evidence.Add(result, "diffusers layout: components " + string.Join(", ", result.Components) + " as <component>/<key>");
        }
        else if (result.Kind == ModelKind.Checkpoint)
        {
            Evidence.Add(result, "single-file checkpoint: " + string.Join(", ", result.Components) + " in one file");
        }

        var encoderFacts = encoders.Select(e => e.Facts).ToList();
        ApplyFamily(result, denoiser, encoderFacts, vae);
        if (denoiser != null)
        {
            result.InputChannels = denoiser.InputChannels;
            AddVariant(result, denoiser.InputChannels is int ic ? UnetFamilyDetector.InputVariant(ic) : null);
            DetectPrediction(index, result);
            if (denoiserPrefix == LdmPrefixes.Unet) DetectEma(index, result);
        }
        // The denoiser decided; the encoders only confirm, so they get whatever evidence room is left.
        if (denoiser?.Base != null) foreach (var e in encoderFacts) Evidence.Add(result, e.Describe());
        return true;
    }

    /// <summary>Files without a component prefix: a bare U-Net/MMDiT, a bare VAE or a bare text encoder.</summary>
    private static bool TryDetectBarePart(TensorIndex index, ModelClassification result)
    {
        var denoiser = UnetFamilyDetector.Detect(index, "");
        if (denoiser.Found)
        {
            result.Kind = ModelKind.Unet;
            result.Components.Add(DenoiserComponent(denoiser));
            Evidence.Add(result, "denoiser weights only, no VAE or text encoder: a standalone " + result.Components[0]);
            ApplyFamily(result, denoiser, new List<TextEncoderFacts>(), null);
            result.InputChannels = denoiser.InputChannels;
            AddVariant(result, denoiser.InputChannels is int ic ? UnetFamilyDetector.InputVariant(ic) : null);
            DetectPrediction(index, result);
            return true;
        }

        var vae = VaeDetector.At(index, "");
        if (vae != null)
        {
            result.Kind = ModelKind.Vae;
            result.Components.Add("vae");
            ApplyFamily(result, null, new List<TextEncoderFacts>(), vae);
            return true;
        }

        var encoder = TextEncoderDetector.At(index, "");
        if (encoder != null)
        {
            result.Kind = ModelKind.TextEncoder;
            result.Components.Add("text_encoder");
            ApplyFamily(result, null, new List<TextEncoderFacts> { encoder }, null);
            return true;
        }
        return false;
    }

    private static void ApplyFamily(ModelClassification result, DenoiserFacts? denoiser, List<TextEncoderFacts> encoders, VaeFacts? vae)
    {
        if (denoiser?.Base is BaseFamily family)
        {
            result.Base = family;
            foreach (var line in denoiser.Evidence) Evidence.Add(result, line);
            return;
        }
        if (denoiser != null) foreach (var line in denoiser.Evidence) Evidence.Add(result, line);
        if (denoiser != null && FamilyFromLayout(denoiser, encoders) is (BaseFamily byLayout, string why))
        {
            result.Base = byLayout;
            Evidence.Add(result, why);
            return;
        }

        var (teBase, teCompatible) = TextEncoderDetector.FamilyOf(encoders);
        foreach (var e in encoders) Evidence.Add(result, e.Describe());
        if (teBase is BaseFamily fromEncoders)
        {
            result.Base = fromEncoders;
            return;
        }

        var compatible = teCompatible.Count > 0 ? teCompatible : vae?.CompatibleBases ?? new List<BaseFamily>();
        if (teCompatible.Count > 0 && vae != null) compatible = teCompatible.Intersect(vae.CompatibleBases).ToList();
        result.CompatibleBases.AddRange(compatible);
        if (vae != null) Evidence.Add(result, vae.Describe());
        if (encoders.Count > 0 && compatible.Count > 0)
        {
            Evidence.Add(result, "a lone " + encoders[0].Architecture + " text encoder is used by "
                + string.Join(", ", compatible.Select(Evidence.Family)) + ": the weights cannot tell which");
        }
    }

    /// <summary>
    /// Scaled-down or custom models (test models, distillations) have widths no released family uses; their layout
    /// still says which pipeline loads them: the family with the same text-encoder layouts, the same ADM (size
    /// conditioning) presence, the same proj_in form, and for several encoders a context equal to their widths' sum.
    /// </summary>
    private static (BaseFamily, string)? FamilyFromLayout(DenoiserFacts denoiser, List<TextEncoderFacts> encoders)
    {
        string widths = denoiser.Context is int c ? $"non-standard context width {c}" : "no standard widths";
        var layouts = encoders.Select(LayoutOf).Order().ToList();
        foreach (var family in ModelArchitectures.Families)
        {
            if (family.ContextWidth == null || family.TextEncoders.Count != encoders.Count) continue;
            if ((family.AdmInputWidth != null) != (denoiser.Adm != null)) continue;
            if (!family.TextEncoders.Select(e => e.Layout).Order().SequenceEqual(layouts)) continue;
            if (encoders.Count >= 2 && denoiser.Context != encoders.Sum(e => e.Width)) continue;
            if (family.AdmInputWidth == null && (denoiser.ProjIn is not { } projIn || (projIn.Rank == 2) != family.LinearTransformerProjection)) continue;

            var parts = encoders.Select(e => (LayoutOf(e) == TextEncoderLayout.OpenClip ? "OpenCLIP text tower" : "Hugging Face CLIP text encoder") + $" ({e.Key.Name})").ToList();
            if (denoiser.Adm != null) parts.Add(denoiser.Adm.Name);
            else parts.Add(family.LinearTransformerProjection ? "linear proj_in" : "1x1-conv proj_in");
            string sum = encoders.Count >= 2 ? $" = the text encoders' widths {string.Join(" + ", encoders.Select(e => e.Width))}" : "";
            return (family.Family, $"{widths}{sum}, but the layout is {family.FamilyName}'s: {string.Join(" and ", parts)} (scaled-down model)");
        }
        return null;
    }

    private static string DenoiserComponent(DenoiserFacts denoiser) =>
        denoiser.Base is BaseFamily family ? ModelArchitectures.Of(family).DenoiserComponent : "unet";

    private static TextEncoderLayout LayoutOf(TextEncoderFacts encoder) =>
        encoder.Key.Name.Contains("embeddings.token_embedding", StringComparison.Ordinal) ? TextEncoderLayout.HuggingFaceClip
        : encoder.Kind == TextEncoderKind.T5Xxl ? TextEncoderLayout.T5
        : TextEncoderLayout.OpenClip;

    private static void DetectPrediction(TensorIndex index, ModelClassification result)
    {
        var prediction = index.Meta("modelspec.prediction_type");
        if (index.Has("v_pred"))
        {
            AddVariant(result, "v-prediction");
            Evidence.Add(result, "v_pred marker tensor present: v-prediction model");
        }
        else if (prediction != null && prediction.StartsWith('v'))
        {
            AddVariant(result, "v-prediction");
            Evidence.Add(result, "metadata modelspec.prediction_type = " + prediction + ": v-prediction");
        }
        else if (prediction == null && index.Meta("modelspec.architecture") is string arch && arch.Contains("768-v", StringComparison.Ordinal))
        {
            AddVariant(result, "v-prediction");
            Evidence.Add(result, "metadata modelspec.architecture = " + arch + ": the 768-v (v-prediction) model");
        }
        else if (prediction == null && result.Base is BaseFamily family && ModelArchitectures.PredictionAmbiguous(family))
        {
            Evidence.Add(result, $"{family.DisplayName()} v-prediction and epsilon models have identical weights: the prediction type cannot be told without metadata");
        }
    }

    private static void DetectEma(TensorIndex index, ModelClassification result)
    {
        int ema = 0;
        foreach (var t in index.AnyWithPrefix(LdmPrefixes.Ema) ? index.Tensors : Array.Empty<Formats.TensorInfo>())
        {
            if (t.Name.StartsWith(LdmPrefixes.Ema, StringComparison.Ordinal) && t.Name is not ("model_ema.decay" or "model_ema.num_updates")) ema++;
        }
        result.HasEma = ema > 0;
        Evidence.Add(result, ema > 0
            ? $"model_ema.* holds {ema} EMA weight copies (e.g. model_ema.diffusion_modelinput_blocks00weight): EMA present"
            : "no model_ema.* weights: EMA pruned");
    }

    private static void AddVariant(ModelClassification result, string? variant)
    {
        if (variant == null) return;
        result.Variant = result.Variant == null ? variant : result.Variant + ", " + variant;
    }
}
