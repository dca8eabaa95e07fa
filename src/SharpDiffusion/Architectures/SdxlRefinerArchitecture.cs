using SharpDiffusion.Inspection;

namespace SharpDiffusion.Architectures;

/// <summary>
/// The SDXL refiner: OpenCLIP bigG alone under <c>conditioner.embedders.0.model.</c> (context 1280), model channels 384,
/// pooled text + size + aesthetic score into <c>label_emb</c> (2560). Runs alone or as A1111's refiner after a base model.
/// </summary>
public sealed class SdxlRefinerArchitecture : ModelArchitecture
{
    private static readonly TextEncoderSlot[] Encoders =
    [
        new("text_encoder_2", TextEncoderKind.OpenClipBigG, TextEncoderLayout.OpenClip, "conditioner.embedders.0.model.",
            ["lora_te2_"], ["text_encoder_2."], Pooled: true),
    ];

    public override BaseFamily Family => BaseFamily.SDXLRefiner;
    public override string FamilyName => "SDXL refiner";
    public override string WireName => "sdxl_refiner";
    public override IReadOnlyList<string> MetadataNames => ["refiner"];
    public override IReadOnlyList<TextEncoderSlot> TextEncoders => Encoders;
    public override int? ContextWidth => 1280;
    public override int? AdmInputWidth => 2560;
    public override int? ModelChannels => 384;
    public override double LatentScale => 0.13025;
    public override int DefaultSize => 1024;
    public override MergeBlockLayout? MergeBlocks => MergeBlockLayout.TwelvePerSide; // four levels (384, 768, 1536, 1536)
    public override bool AlignYourStepsSdxl => true; // A1111 picks the table by is_sdxl, which the refiner also is
    public override float[,]? LatentRgbFactors => SdxlArchitecture.SdxlLatentRgb;
    public override string? TaesdName => "taesdxl";
}
