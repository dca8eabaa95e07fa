using SharpDiffusion.Inspection;

namespace SharpDiffusion.Architectures;

/// <summary>Stable Diffusion 1.x: CLIP ViT-L (transformers names) under <c>cond_stage_model.transformer.</c>, context 768, 512 px.</summary>
public class Sd1Architecture : ModelArchitecture
{
    private static readonly TextEncoderSlot[] Encoders =
    [
        new("text_encoder", TextEncoderKind.ClipL, TextEncoderLayout.HuggingFaceClip, "cond_stage_model.transformer.",
            ["lora_te_", "lora_te1_"], ["text_encoder."]),
    ];

    public override BaseFamily Family => BaseFamily.SD1;
    public override string FamilyName => "SD1";
    public override string WireName => "sd1";
    public override IReadOnlyList<string> MetadataNames => ["v1", "sd_1", "diffusion-1"];
    public override IReadOnlyList<TextEncoderSlot> TextEncoders => Encoders;
    public override int? ContextWidth => 768;
    public override bool LinearTransformerProjection => false;
    public override double LatentScale => 0.18215;
    public override int DefaultSize => 512;
    public override MergeBlockLayout? MergeBlocks => MergeBlockLayout.TwelvePerSide;
    public override float[,]? LatentRgbFactors => Sd1LatentRgb;
    public override string? TaesdName => "taesd";

    /// <summary>A1111 1.10's cheap-approximation factors for SD1 latents (also used for SD2).</summary>
    internal static readonly float[,] Sd1LatentRgb =
    {
        { 0.298f, 0.207f, 0.208f },
        { 0.187f, 0.286f, 0.173f },
        { -0.158f, 0.189f, 0.264f },
        { -0.184f, -0.271f, -0.473f },
    };
}

/// <summary>SD1 inpainting (e.g. sd-v1-5-inpainting): the U-Net also takes the mask and the masked image's latent (9 channels).</summary>
public sealed class Sd1InpaintArchitecture : Sd1Architecture
{
    public override string? Variant => "inpaint";
    public override int InputChannels => 9;

    // Generates through ImageGenerator's inpainting path (an init image and a mask are required).
}

/// <summary>InstructPix2Pix (SD1): the U-Net also takes the input image's latent (8 channels). Recognised only.</summary>
public sealed class Sd1InstructPix2PixArchitecture : Sd1Architecture
{
    public override string? Variant => "instruct-pix2pix";
    public override int InputChannels => 8;
    public override bool CanGenerate => false;
}
