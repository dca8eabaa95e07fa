using SharpDiffusion.Inspection;

namespace SharpDiffusion.Architectures;

/// <summary>
/// Everything SharpDiffusion knows about one model family or variant, said once: its key prefixes, text encoders and
/// their roles, cross-attention width, latent space, default size, prediction type, merge block layout and names.
/// Inspection, the engine, the workshop, LoRA resolution and <c>list</c> ask <see cref="ModelArchitectures"/> for these
/// facts instead of switching over families. Adding a family is one new subclass listed in
/// <see cref="ModelArchitectures.All"/> (plus, for generation, its modules in the engine).
/// </summary>
public abstract class ModelArchitecture
{
    /// <summary>The family this architecture belongs to (the classifier's verdict and the wire name's source).</summary>
    public abstract BaseFamily Family { get; }

    /// <summary>How people call the family in messages: "SD1", "SD2", "SDXL", "SDXL refiner".</summary>
    public abstract string FamilyName { get; }

    /// <summary>The family's name in JSON and file metadata: "sd1", "sdxl_refiner".</summary>
    public abstract string WireName { get; }

    /// <summary>
    /// Lower-case fragments that name the family in metadata (<c>modelspec.architecture</c>, kohya's
    /// <c>ss_base_model_version</c>), e.g. "stable-diffusion-xl-v1-base" or "sd_v1". Families are tried in
    /// <see cref="ModelArchitectures.MetadataPrecedence"/> order, since "xl-v1" also contains SD1's "v1".
    /// </summary>
    public virtual IReadOnlyList<string> MetadataNames => [];

    /// <summary>The variant within the family ("inpaint", "v-prediction"), or null for the family's base model.</summary>
    public virtual string? Variant => null;

    /// <summary>Family and variant for messages: "SD2 (v-prediction)".</summary>
    public string DisplayName => Variant == null ? FamilyName : $"{FamilyName} ({Variant})";

    /// <summary>The denoiser's component name: <c>unet</c>, or <c>transformer</c> for MMDiT families.</summary>
    public virtual string DenoiserComponent => "unet";

    /// <summary>The denoiser's key prefix in a single-file checkpoint.</summary>
    public virtual string DenoiserPrefix => LdmPrefixes.Unet;

    /// <summary>The VAE's key prefix in a single-file checkpoint.</summary>
    public virtual string VaePrefix => LdmPrefixes.Vae;

    /// <summary>The text encoders, in the order the conditioner concatenates their outputs.</summary>
    public abstract IReadOnlyList<TextEncoderSlot> TextEncoders { get; }

    /// <summary>The U-Net's cross-attention context width (the text encoders' widths together); null for MMDiT families.</summary>
    public abstract int? ContextWidth { get; }

    /// <summary>The U-Net's ADM ("label_emb") input width: pooled text + size conditioning (SDXL 2816, refiner 2560); null when absent.</summary>
    public virtual int? AdmInputWidth => null;

    /// <summary>The first-block width of the released U-Nets (SD1, SD2, SDXL).</summary>
    public const int StandardModelChannels = 320;

    /// <summary>The U-Net's first-block width (320 for SD1/SD2/SDXL, 384 for the refiner); null for MMDiT families.</summary>
    public virtual int? ModelChannels => StandardModelChannels;

    /// <summary>Whether the U-Net's transformer proj_in/proj_out are linear layers (SD2, SDXL) rather than 1x1 convolutions (SD1).</summary>
    public virtual bool LinearTransformerProjection => true;

    /// <summary>Channels of the VAE latent.</summary>
    public virtual int LatentChannels => 4;

    /// <summary>The factor latents are multiplied by after encoding (A1111's <c>scale_factor</c>).</summary>
    public abstract double LatentScale { get; }

    /// <summary>Pixels per latent cell along each side.</summary>
    public virtual int VaeDownscale => 8;

    /// <summary>Input channels of the denoiser: the latent, plus mask and masked image for inpainting models.</summary>
    public virtual int InputChannels => LatentChannels;

    /// <summary>The image size the family was trained at (width = height).</summary>
    public abstract int DefaultSize { get; }

    /// <summary>What the denoiser predicts unless a config or metadata says otherwise.</summary>
    public virtual PredictionType Prediction => PredictionType.Epsilon;

    /// <summary>The blocks a block-weighted merge addresses; null where no block-weighted merge is defined.</summary>
    public virtual MergeBlockLayout? MergeBlocks => null;

    /// <summary>
    /// A1111's "Approximate cheap" preview: latent channel x (R, G, B) factors (<c>sd_vae_approx.cheap_approximation</c>);
    /// null where none is defined.
    /// </summary>
    public virtual float[,]? LatentRgbFactors => null;

    /// <summary>The TAESD preview decoder's file stem in A1111's <c>models/VAE-approx/</c> (<c>taesd</c>, <c>taesdxl</c>); null for none.</summary>
    public virtual string? TaesdName => null;

    /// <summary>Whether the Align Your Steps schedule uses its SDXL table (otherwise the SD1.5 one, as A1111 does).</summary>
    public virtual bool AlignYourStepsSdxl => false;

    /// <summary>Whether the engine can generate with this architecture today.</summary>
    public virtual bool CanGenerate => true;

    /// <summary>The text encoder in the named component slot (<c>text_encoder</c>, <c>text_encoder_2</c>), or null.</summary>
    public TextEncoderSlot? TextEncoder(string component) => TextEncoders.FirstOrDefault(e => e.Component == component);

    /// <summary>The text encoder of this kind, or null.</summary>
    public TextEncoderSlot? TextEncoder(TextEncoderKind kind) => TextEncoders.FirstOrDefault(e => e.Kind == kind);

    public override string ToString() => DisplayName;
}
