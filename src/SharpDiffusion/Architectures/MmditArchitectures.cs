using SharpDiffusion.Inspection;

namespace SharpDiffusion.Architectures;

/// <summary>
/// Stable Diffusion 3.x: an MMDiT denoiser on 16-channel latents with CLIP-L, CLIP-G and T5-XXL (ComfyUI single-file
/// names <c>text_encoders.*</c>). Recognised by <c>inspect</c>; generation is where its modules will go.
/// </summary>
public sealed class Sd3Architecture : ModelArchitecture
{
    private static readonly TextEncoderSlot[] Encoders =
    [
        new("text_encoder", TextEncoderKind.ClipL, TextEncoderLayout.HuggingFaceClip, "text_encoders.clip_l.transformer.", ["lora_te1_"], ["text_encoder."]),
        new("text_encoder_2", TextEncoderKind.OpenClipBigG, TextEncoderLayout.HuggingFaceClip, "text_encoders.clip_g.transformer.", ["lora_te2_"], ["text_encoder_2."], Pooled: true),
        new("text_encoder_3", TextEncoderKind.T5Xxl, TextEncoderLayout.T5, "text_encoders.t5xxl.transformer.", ["lora_te3_"], ["text_encoder_3."]),
    ];

    public override BaseFamily Family => BaseFamily.SD3;
    public override string FamilyName => "SD3";
    public override string WireName => "sd3";
    public override IReadOnlyList<string> MetadataNames => ["v3", "sd3", "diffusion-3"];
    public override IReadOnlyList<TextEncoderSlot> TextEncoders => Encoders;
    public override int? ContextWidth => null;
    public override string DenoiserComponent => "transformer";
    public override int? ModelChannels => null;
    public override int LatentChannels => 16;
    public override double LatentScale => 1.5305;
    public override int DefaultSize => 1024;
    public override PredictionType Prediction => PredictionType.Flow;
    public override bool CanGenerate => false;
}

/// <summary>Flux.1: double- and single-stream MMDiT blocks on 16-channel latents, CLIP-L (pooled) and T5-XXL. Recognised only.</summary>
public sealed class FluxArchitecture : ModelArchitecture
{
    private static readonly TextEncoderSlot[] Encoders =
    [
        new("text_encoder", TextEncoderKind.ClipL, TextEncoderLayout.HuggingFaceClip, "text_encoders.clip_l.transformer.", ["lora_te1_"], ["text_encoder."], Pooled: true),
        new("text_encoder_2", TextEncoderKind.T5Xxl, TextEncoderLayout.T5, "text_encoders.t5xxl.transformer.", ["lora_te2_"], ["text_encoder_2."]),
    ];

    public override BaseFamily Family => BaseFamily.Flux;
    public override string FamilyName => "Flux";
    public override string WireName => "flux";
    public override IReadOnlyList<string> MetadataNames => ["flux"];
    public override IReadOnlyList<TextEncoderSlot> TextEncoders => Encoders;
    public override int? ContextWidth => null;
    public override string DenoiserComponent => "transformer";
    public override int? ModelChannels => null;
    public override int LatentChannels => 16;
    public override double LatentScale => 0.3611;

    /// <summary>The latent enters as 2x2 patches: 16 channels x 4 = 64 (<c>img_in</c>).</summary>
    public override int InputChannels => LatentChannels * 4;
    public override int DefaultSize => 1024;
    public override PredictionType Prediction => PredictionType.Flow;
    public override bool CanGenerate => false;
}
