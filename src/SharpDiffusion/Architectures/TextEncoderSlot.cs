namespace SharpDiffusion.Architectures;

/// <summary>The text-encoder models Stable Diffusion families use, told apart by their token width.</summary>
public enum TextEncoderKind
{
    /// <summary>OpenAI CLIP ViT-L/14 (SD1; SDXL's first encoder), width 768.</summary>
    ClipL,

    /// <summary>OpenCLIP ViT-H/14 (SD2), width 1024.</summary>
    OpenClipH,

    /// <summary>OpenCLIP ViT-bigG/14 (SDXL's second encoder, the refiner's only one), width 1280.</summary>
    OpenClipBigG,

    /// <summary>T5-XXL encoder (SD3, Flux), width 4096.</summary>
    T5Xxl,
}

/// <summary>How a text encoder's weights are named inside the checkpoint.</summary>
public enum TextEncoderLayout
{
    /// <summary>transformers' CLIPTextModel: <c>text_model.encoder.layers.N.self_attn.q_proj</c> ...</summary>
    HuggingFaceClip,

    /// <summary>OpenCLIP's text tower: <c>transformer.resblocks.N.attn.in_proj_weight</c> ...</summary>
    OpenClip,

    /// <summary>transformers' T5EncoderModel.</summary>
    T5,
}

public static class TextEncoderKinds
{
    public static int Width(this TextEncoderKind kind) => kind switch
    {
        TextEncoderKind.ClipL => 768,
        TextEncoderKind.OpenClipH => 1024,
        TextEncoderKind.OpenClipBigG => 1280,
        TextEncoderKind.T5Xxl => 4096,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>"CLIP ViT-L", "OpenCLIP ViT-H", "OpenCLIP ViT-bigG", "T5-XXL".</summary>
    public static string DisplayName(this TextEncoderKind kind) => kind switch
    {
        TextEncoderKind.ClipL => "CLIP ViT-L",
        TextEncoderKind.OpenClipH => "OpenCLIP ViT-H",
        TextEncoderKind.OpenClipBigG => "OpenCLIP ViT-bigG",
        TextEncoderKind.T5Xxl => "T5-XXL",
        _ => kind.ToString(),
    };

    /// <summary>The CLIP-family encoder with this token width (768, 1024, 1280), or null.</summary>
    public static TextEncoderKind? ClipOfWidth(int width) => width switch
    {
        768 => TextEncoderKind.ClipL,
        1024 => TextEncoderKind.OpenClipH,
        1280 => TextEncoderKind.OpenClipBigG,
        _ => null,
    };
}

/// <summary>
/// One text encoder of a family: where its weights live in the single-file checkpoint, what it is, and every name
/// network files (LoRA/LyCORIS) give its modules.
/// </summary>
/// <param name="Component">The component name <c>inspect</c> reports and the diffusers folder uses: <c>text_encoder</c>, <c>text_encoder_2</c>.</param>
/// <param name="Prefix">Its key prefix in the single-file checkpoint, e.g. <c>cond_stage_model.transformer.</c>.</param>
/// <param name="KohyaPrefixes">kohya module-name prefixes that address it, preferred first (<c>lora_te_</c>, <c>lora_te1_</c>).</param>
/// <param name="DottedPrefixes">PEFT/diffusers module-name prefixes that address it (<c>text_encoder.</c>).</param>
/// <param name="Pooled">Whether the family feeds this encoder's pooled output to the U-Net (SDXL's bigG).</param>
public sealed record TextEncoderSlot(string Component, TextEncoderKind Kind, TextEncoderLayout Layout, string Prefix,
    IReadOnlyList<string> KohyaPrefixes, IReadOnlyList<string> DottedPrefixes, bool Pooled = false)
{
    public int Width => Kind.Width();
}
