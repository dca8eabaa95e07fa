using SharpDiffusion.Inspection;

namespace SharpDiffusion.Architectures;

/// <summary>Stable Diffusion 2.x 512-base: OpenCLIP ViT-H under <c>cond_stage_model.model.</c>, context 1024, linear proj_in.</summary>
public class Sd2Architecture : ModelArchitecture
{
    private static readonly TextEncoderSlot[] Encoders =
    [
        // kohya names SD2's OpenCLIP modules with transformers' CLIP paths (q/k/v are row blocks of in_proj_weight).
        new("text_encoder", TextEncoderKind.OpenClipH, TextEncoderLayout.OpenClip, "cond_stage_model.model.",
            ["lora_te_", "lora_te1_"], ["text_encoder."]),
    ];

    public override BaseFamily Family => BaseFamily.SD2;
    public override string FamilyName => "SD2";
    public override string WireName => "sd2";
    public override IReadOnlyList<string> MetadataNames => ["v2", "sd_2", "diffusion-2"];
    public override IReadOnlyList<TextEncoderSlot> TextEncoders => Encoders;
    public override int? ContextWidth => 1024;
    public override double LatentScale => 0.18215;
    public override int DefaultSize => 512;
    public override MergeBlockLayout? MergeBlocks => MergeBlockLayout.TwelvePerSide;
    public override float[,]? LatentRgbFactors => Sd1Architecture.Sd1LatentRgb; // A1111 uses SD1's factors for SD2
    public override string? TaesdName => "taesd";
}

/// <summary>SD 2.x 768-v: the same weights' shapes as 512-base, trained for v-prediction at 768 px.</summary>
public sealed class Sd2VArchitecture : Sd2Architecture
{
    public override string? Variant => "v-prediction";
    public override int DefaultSize => 768;
    public override PredictionType Prediction => PredictionType.V;
}

/// <summary>SD2 inpainting (512-inpainting-ema): 9 input channels.</summary>
public sealed class Sd2InpaintArchitecture : Sd2Architecture
{
    public override string? Variant => "inpaint";
    public override int InputChannels => 9;

    // Generates through ImageGenerator's inpainting path, as SD1's (an init image and a mask are required).
}
