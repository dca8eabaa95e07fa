using SharpDiffusion.Inspection;

namespace SharpDiffusion.Architectures;

/// <summary>
/// SDXL base: CLIP ViT-L and OpenCLIP bigG under <c>conditioner.embedders.0/1.</c> (context 768 + 1280 = 2048), the
/// bigG pooled output plus six size numbers into <c>label_emb</c> (2816), 1024 px, latents scaled by 0.13025.
/// </summary>
public class SdxlArchitecture : ModelArchitecture
{
    private static readonly TextEncoderSlot[] Encoders =
    [
        new("text_encoder", TextEncoderKind.ClipL, TextEncoderLayout.HuggingFaceClip, "conditioner.embedders.0.transformer.",
            ["lora_te1_", "lora_te_"], ["text_encoder."]),
        new("text_encoder_2", TextEncoderKind.OpenClipBigG, TextEncoderLayout.OpenClip, "conditioner.embedders.1.model.",
            ["lora_te2_"], ["text_encoder_2."], Pooled: true),
    ];

    public override BaseFamily Family => BaseFamily.SDXL;
    public override string FamilyName => "SDXL";
    public override string WireName => "sdxl";
    public override IReadOnlyList<string> MetadataNames => ["xl"];
    public override IReadOnlyList<TextEncoderSlot> TextEncoders => Encoders;
    public override int? ContextWidth => 2048;
    public override int? AdmInputWidth => 2816;
    public override double LatentScale => 0.13025;
    public override int DefaultSize => 1024;
    public override MergeBlockLayout? MergeBlocks => MergeBlockLayout.NinePerSide;
    public override float[,]? LatentRgbFactors => SdxlLatentRgb;
    public override string? TaesdName => "taesdxl";
    public override bool AlignYourStepsSdxl => true;

    /// <summary>A1111 1.10's cheap-approximation factors for SDXL latents.</summary>
    internal static readonly float[,] SdxlLatentRgb =
    {
        { 0.3448f, 0.4168f, 0.4395f },
        { -0.1953f, -0.0290f, 0.0250f },
        { 0.1074f, 0.0886f, -0.0163f },
        { -0.3730f, -0.2499f, -0.2088f },
    };
}

/// <summary>SDXL inpainting (diffusers' sd_xl_inpainting_0.1): 9 input channels.</summary>
public sealed class SdxlInpaintArchitecture : SdxlArchitecture
{
    public override string? Variant => "inpaint";
    public override int InputChannels => 9;

    // Generates through ImageGenerator's inpainting path, as SD1's (an init image and a mask are required).
}
