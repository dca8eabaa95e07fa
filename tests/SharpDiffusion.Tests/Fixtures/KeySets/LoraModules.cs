using System.Text.RegularExpressions;

namespace SharpDiffusion.Tests.Fixtures.KeySets;

/// <summary>A layer a LoRA adapts: its dotted path in the base model, its target, and its weight shape.</summary>
public sealed record LoraTarget(string Path, string Component, long[] WeightShape)
{
    public long Out => WeightShape[0];
    public long In => WeightShape[1];
    public bool IsConv => WeightShape.Length == 4;

    /// <summary>kohya's flattened module name: lora_unet_down_blocks_0_..., lora_te1_text_model_...</summary>
    public string KohyaName(bool sdxl) => Component switch
    {
        "unet" => "lora_unet_",
        "text_encoder" => sdxl ? "lora_te1_" : "lora_te_",
        _ => "lora_te2_",
    } + Path.Replace('.', '_');
}

/// <summary>
/// The layers kohya's networks/lora.py adapts, listed from the architectures: every Linear/Conv inside the U-Net's
/// transformer blocks (<c>Transformer2DModel</c>: proj_in/out, attention, feed-forward) and the text encoders'
/// attention and MLP; with conv_dim (LoCon) also the ResNet blocks and samplers. SD1 uses diffusers module names
/// (from the reference diffusers inventory); SDXL uses LDM names (from <see cref="LdmUnetKeys"/>), as kohya does.
/// </summary>
public static partial class LoraModules
{
    [GeneratedRegex(@"^(down_blocks|up_blocks|mid_block)\..*attentions\.\d+\.(proj_in|proj_out|transformer_blocks\.\d+\.(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2)))\.weight$")]
    private static partial Regex DiffusersTransformerLayer();

    [GeneratedRegex(@"^(down_blocks|up_blocks|mid_block)\..*(resnets\.\d+\.(conv1|conv2|conv_shortcut|time_emb_proj)|downsamplers\.0\.conv|upsamplers\.0\.conv)\.weight$")]
    private static partial Regex DiffusersResnetLayer();

    [GeneratedRegex(@"^(input_blocks\.\d+\.1|middle_block\.1|output_blocks\.\d+\.1)\.(proj_in|proj_out|transformer_blocks\.\d+\.(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2)))\.weight$")]
    private static partial Regex LdmTransformerLayer();

    [GeneratedRegex(@"^(input_blocks|middle_block|output_blocks)\.(\d+\.)?\d+\.(in_layers\.2|out_layers\.3|skip_connection|emb_layers\.1|op|conv)\.weight$")]
    private static partial Regex LdmResnetLayer();

    [GeneratedRegex(@"^text_model\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])\.weight$")]
    private static partial Regex ClipLayer();

    private static List<LoraTarget> Select(IEnumerable<KeyEntry> keys, string stripPrefix, Regex pattern, string component) =>
        keys.Where(k => k.Name.StartsWith(stripPrefix, StringComparison.Ordinal))
            .Select(k => (Path: k.Name[stripPrefix.Length..], k.Shape))
            .Where(k => pattern.IsMatch(k.Path))
            .Select(k => new LoraTarget(k.Path[..^".weight".Length], component, k.Shape))
            .ToList();

    public static List<LoraTarget> SD1TextEncoder() => Select(ReferenceTsv.Load("sd15_diffusers_text_encoder.tsv"), "", ClipLayer(), "text_encoder");

    public static List<LoraTarget> SD1Unet() => Select(ReferenceTsv.Load("sd15_diffusers_unet.tsv"), "", DiffusersTransformerLayer(), "unet");

    public static List<LoraTarget> SD1UnetConv() => Select(ReferenceTsv.Load("sd15_diffusers_unet.tsv"), "", DiffusersResnetLayer(), "unet");

    /// <summary>SD1 LoRA targets: 192 U-Net transformer layers + 72 text-encoder layers = 264 modules.</summary>
    public static List<LoraTarget> SD1() => SD1TextEncoder().Concat(SD1Unet()).ToList();

    public static List<LoraTarget> SDXLUnet() => Select(LdmUnetKeys.Generate(LdmUnetConfig.SDXL, ""), "", LdmTransformerLayer(), "unet");

    public static List<LoraTarget> SDXLUnetConv() => Select(LdmUnetKeys.Generate(LdmUnetConfig.SDXL, ""), "", LdmResnetLayer(), "unet");

    public static List<LoraTarget> SDXLTextEncoders() =>
        Select(TextEncoderKeys.HuggingFaceClip("text_model.", 12, 768), "", ClipLayer(), "text_encoder")
            .Concat(Select(TextEncoderKeys.HuggingFaceClip("text_model.", 32, 1280), "", ClipLayer(), "text_encoder_2"))
            .ToList();

    public static List<LoraTarget> SDXL() => SDXLTextEncoders().Concat(SDXLUnet()).ToList();

    /// <summary>An SD2 U-Net's transformer layers (context 1024, linear proj) in diffusers names, from the SD1 list.</summary>
    public static List<LoraTarget> SD2Unet() => SD1Unet().Select(t => t with
    {
        WeightShape = t.Path.EndsWith("attn2.to_k", StringComparison.Ordinal) || t.Path.EndsWith("attn2.to_v", StringComparison.Ordinal)
            ? new[] { t.Out, 1024L }
            : t.IsConv ? new[] { t.Out, t.In } : t.WeightShape,
    }).ToList();
}
