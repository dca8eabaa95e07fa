using SharpDiffusion.Inspection;

namespace SharpDiffusion.Architectures;

/// <summary>
/// The registry of model architectures: every family and variant SharpDiffusion knows, and the look-ups that used to
/// be switches spread over inspection, the engine and the workshop (family by context width, by text-encoder widths,
/// by latent channels; names; prefixes).
/// </summary>
public static class ModelArchitectures
{
    public static Sd1Architecture Sd1 { get; } = new();
    public static Sd1InpaintArchitecture Sd1Inpaint { get; } = new();
    public static Sd1InstructPix2PixArchitecture Sd1InstructPix2Pix { get; } = new();
    public static Sd2Architecture Sd2 { get; } = new();
    public static Sd2VArchitecture Sd2V { get; } = new();
    public static Sd2InpaintArchitecture Sd2Inpaint { get; } = new();
    public static SdxlArchitecture Sdxl { get; } = new();
    public static SdxlInpaintArchitecture SdxlInpaint { get; } = new();
    public static SdxlRefinerArchitecture SdxlRefiner { get; } = new();
    public static Sd3Architecture Sd3 { get; } = new();
    public static FluxArchitecture Flux { get; } = new();

    /// <summary>Every architecture, each family's base model first.</summary>
    public static IReadOnlyList<ModelArchitecture> All { get; } =
        [Sd1, Sd1Inpaint, Sd1InstructPix2Pix, Sd2, Sd2V, Sd2Inpaint, Sdxl, SdxlInpaint, SdxlRefiner, Sd3, Flux];

    /// <summary>One architecture per family: the family's base model (no variant).</summary>
    public static IReadOnlyList<ModelArchitecture> Families { get; } = All.Where(a => a.Variant == null).ToArray();

    /// <summary>The base model of a family.</summary>
    public static ModelArchitecture Of(BaseFamily family) => Families.First(a => a.Family == family);

    /// <summary>
    /// The architecture of a model of <paramref name="family"/> with this many U-Net input channels and this prediction
    /// type (null: the family's default), or null when the family has no such variant (e.g. 8-channel instruct-pix2pix).
    /// </summary>
    public static ModelArchitecture? Of(BaseFamily family, int inputChannels, PredictionType? prediction = null)
    {
        var candidates = All.Where(a => a.Family == family && a.InputChannels == inputChannels).ToList();
        if (prediction is PredictionType p) return candidates.FirstOrDefault(a => a.Prediction == p);
        return candidates.FirstOrDefault();
    }

    /// <summary>The variant a U-Net with this many input channels is ("inpaint", "instruct-pix2pix"); null for plain latents.</summary>
    public static string? VariantOfInputChannels(int inputChannels) =>
        All.FirstOrDefault(a => a.Variant != null && a.InputChannels == inputChannels && a.InputChannels != a.LatentChannels)?.Variant;

    /// <summary>
    /// Whether models of this family come in eps and v-prediction versions with identical weights (SD2 512-base and
    /// 768-v), so the prediction type cannot be read off the shapes.
    /// </summary>
    public static bool PredictionAmbiguous(BaseFamily family) =>
        All.Where(a => a.Family == family && a.InputChannels == a.LatentChannels).Select(a => a.Prediction).Distinct().Count() > 1;

    /// <summary>The order metadata names are tried in: the most specific first ("xl-v1-refiner" is the refiner, "xl-v1" SDXL).</summary>
    public static IReadOnlyList<ModelArchitecture> MetadataPrecedence { get; } = [SdxlRefiner, Sdxl, Flux, Sd3, Sd2, Sd1];

    /// <summary>The family a metadata value such as "stable-diffusion-xl-v1-base" or "sd_v1" names, or null.</summary>
    public static BaseFamily? FamilyOfMetadataName(string name)
    {
        var n = name.ToLowerInvariant();
        return MetadataPrecedence.FirstOrDefault(a => a.MetadataNames.Any(h => n.Contains(h, StringComparison.Ordinal)))?.Family;
    }

    /// <summary>
    /// The architecture of a classified model file: its family with its input channels (inpaint, instruct-pix2pix) and
    /// the v-prediction variant when the classification says so; null when it has no family or an unknown variant.
    /// </summary>
    public static ModelArchitecture? Of(ModelClassification classification)
    {
        if (classification.Base is not BaseFamily family) return null;
        var latent = Of(family).LatentChannels;
        PredictionType? prediction = classification.Variant?.Contains("v-prediction", StringComparison.Ordinal) == true ? PredictionType.V : null;
        return Of(family, classification.InputChannels ?? latent, prediction) ?? Of(family, classification.InputChannels ?? latent);
    }

    /// <summary>
    /// Whether an extra network (LoRA, embedding, hypernetwork, VAE...) fits a model of <paramref name="model"/>: true
    /// when its family is the model's or the model's is among its compatible families, false when it names others,
    /// null when the network's weights cannot tell. <c>list</c> and generation both decide with this.
    /// </summary>
    public static bool? Fits(ModelClassification network, BaseFamily model)
    {
        if (network.Base is BaseFamily family) return family == model;
        if (network.CompatibleBases.Count > 0) return network.CompatibleBases.Contains(model);
        return null;
    }

    /// <summary>
    /// The family whose every text-encoder prefix occurs among these single-file keys (the one with most encoders when
    /// several do), or null when no family's encoders are there.
    /// </summary>
    public static ModelArchitecture? FamilyOfTextEncoderPrefixes(IEnumerable<string> keys)
    {
        var list = keys as IReadOnlyCollection<string> ?? keys.ToList();
        return Families
            .Where(a => a.TextEncoders.Count > 0 && a.TextEncoders.All(e => list.Any(k => k.StartsWith(e.Prefix, StringComparison.Ordinal))))
            .OrderByDescending(a => a.TextEncoders.Count)
            .FirstOrDefault();
    }

    /// <summary>"SD1", "SD2", "SDXL", "SDXL refiner", "SD3", "Flux".</summary>
    public static string DisplayName(this BaseFamily family) => Of(family).FamilyName;

    /// <summary>"sd1", "sd2", "sdxl", "sdxl_refiner", "sd3", "flux".</summary>
    public static string WireName(this BaseFamily family) => Of(family).WireName;

    /// <summary>The family whose U-Net cross-attends to a context this wide (768 SD1, 1024 SD2, 2048 SDXL, 1280 refiner), or null.</summary>
    public static BaseFamily? FamilyOfContextWidth(int width) =>
        Families.FirstOrDefault(a => a.ContextWidth == width)?.Family;

    /// <summary>
    /// The families an A1111 hypernetwork can serve, from the widths its layers are keyed by. A1111 picks the layers
    /// keyed by the model's context width, so every family whose context width is present can use the file. Older
    /// A1111 versions also made layers for the U-Net's channel widths (320, 640, 1280); 1280 is then not the refiner's
    /// context, so the refiner counts only when no other family matches.
    /// </summary>
    public static IReadOnlyList<BaseFamily> FamiliesOfHypernetworkWidths(IEnumerable<int> widths)
    {
        var set = widths.ToHashSet();
        var matches = Families.Where(a => a.ContextWidth is int c && set.Contains(c)).Select(a => a.Family).ToList();
        if (matches.Count > 1) matches.Remove(BaseFamily.SDXLRefiner);
        return matches;
    }

    /// <summary>The families whose VAE latent has this many channels (4: SD1/SD2/SDXL/refiner; 16: SD3/Flux).</summary>
    public static IReadOnlyList<BaseFamily> FamiliesWithLatentChannels(int channels) =>
        Families.Where(a => a.LatentChannels == channels).Select(a => a.Family).ToArray();

    /// <summary>
    /// The families whose text encoders include every one of <paramref name="kinds"/> (a lone CLIP-L serves SD1, SDXL,
    /// SD3 and Flux); with <paramref name="exact"/>, those whose encoders are exactly these kinds.
    /// </summary>
    public static IReadOnlyList<BaseFamily> FamiliesWithTextEncoders(IReadOnlyCollection<TextEncoderKind> kinds, bool exact = false) =>
        Families.Where(a => kinds.All(k => a.TextEncoder(k) != null) && (!exact || a.TextEncoders.Count == kinds.Distinct().Count()))
            .Select(a => a.Family).ToArray();

    /// <summary>
    /// What a set of text encoders says about the family: the family when only one has them all (or, for two or more
    /// encoders, only one has exactly these), else every family that has them all (a lone CLIP-L serves SD1, SDXL, SD3, Flux).
    /// </summary>
    public static (BaseFamily? Family, IReadOnlyList<BaseFamily> Compatible) FamilyOfTextEncoders(IReadOnlyCollection<TextEncoderKind> kinds)
    {
        if (kinds.Count == 0) return (null, []);
        var containing = FamiliesWithTextEncoders(kinds);
        if (containing.Count == 1) return (containing[0], []);
        if (kinds.Distinct().Count() >= 2 && FamiliesWithTextEncoders(kinds, exact: true) is [var only]) return (only, []);
        return (null, containing);
    }

    /// <summary>The families whose token space a textual-inversion vector of this width lives in (768 SD1, 1024 SD2).</summary>
    public static IReadOnlyList<BaseFamily> FamiliesWithSingleEncoderWidth(int width) =>
        Families.Where(a => a.TextEncoders.Count == 1 && a.TextEncoders[0].Width == width).Select(a => a.Family).ToArray();

    /// <summary>Every single-file text-encoder prefix any family uses, with its component name.</summary>
    public static IReadOnlyList<(string Prefix, string Component)> TextEncoderPrefixes { get; } =
        All.SelectMany(a => a.TextEncoders).Select(e => (e.Prefix, e.Component)).Distinct().ToArray();
}
