using SharpDiffusion.Architectures;
namespace SharpDiffusion.Conversion;

/// <summary>
/// VAE (AutoencoderKL) tensor names: LDM (<c>decoder.up.3.block.0.conv1.weight</c>) to diffusers
/// (<c>decoder.up_blocks.0.resnets.0.conv1.weight</c>) and back. Keys here are without the <c>first_stage_model.</c> prefix.
/// The decoder's up path is numbered in reverse in LDM; the mid attention projections are 1x1 convolutions in LDM
/// and Linear layers in diffusers.
/// </summary>
public static class VaeKeyNames
{
    private static readonly (string Ldm, string Modern, string Legacy)[] AttentionParts =
    [
        ("norm", "group_norm", "group_norm"),
        ("q", "to_q", "query"),
        ("k", "to_k", "key"),
        ("v", "to_v", "value"),
        ("proj_out", "to_out.0", "proj_attn"),
    ];

    private static readonly HashSet<string> ResnetModules = ["norm1", "conv1", "norm2", "conv2"];

    /// <summary>The diffusers key and the tensor change for an LDM VAE key; null when it has no counterpart.</summary>
    /// <param name="levels">Resolution levels of the VAE (length of <c>ch_mult</c>; 4 for SD).</param>
    public static (string Key, TensorTransform Transform)? ToDiffusers(string ldmKey, int levels, VaeAttentionNames names = VaeAttentionNames.Modern)
    {
        var p = ldmKey.Split('.');
        if (p.Length == 2 && p[0] is "quant_conv" or "post_quant_conv") return (ldmKey, TensorTransform.None);
        if (p.Length < 3 || p[0] is not ("encoder" or "decoder")) return null;
        string coder = p[0];
        bool decoder = coder == "decoder";
        switch (p[1])
        {
            case "conv_in" or "conv_out" when p.Length == 3:
                return (ldmKey, TensorTransform.None);
            case "norm_out" when p.Length == 3:
                return ($"{coder}.conv_norm_out.{p[2]}", TensorTransform.None);
            case "down" or "up" when p.Length > 4 && p[1] == (decoder ? "up" : "down") && UnetLayout.TryIndex(p[2], out int i) && i < levels:
            {
                string block = $"{coder}.{(decoder ? "up_blocks" : "down_blocks")}.{(decoder ? levels - 1 - i : i)}";
                if (p[3] == "block" && p.Length == 7 && UnetLayout.TryIndex(p[4], out int j))
                {
                    string? module = p[5] == "nin_shortcut" ? "conv_shortcut" : ResnetModules.Contains(p[5]) ? p[5] : null;
                    return module == null ? null : ($"{block}.resnets.{j}.{module}.{p[6]}", TensorTransform.None);
                }
                string sampler = decoder ? "upsample" : "downsample";
                if (p[3] == sampler && p.Length == 6 && p[4] == "conv")
                    return ($"{block}.{(decoder ? "upsamplers" : "downsamplers")}.0.conv.{p[5]}", TensorTransform.None);
                return null;
            }
            case "mid" when p.Length == 5:
                if (p[2] is "block_1" or "block_2")
                {
                    string? module = p[3] == "nin_shortcut" ? "conv_shortcut" : ResnetModules.Contains(p[3]) ? p[3] : null;
                    return module == null ? null : ($"{coder}.mid_block.resnets.{(p[2] == "block_1" ? 0 : 1)}.{module}.{p[4]}", TensorTransform.None);
                }
                if (p[2] == "attn_1")
                {
                    foreach (var (ldm, modern, legacy) in AttentionParts)
                    {
                        if (p[3] != ldm) continue;
                        var transform = ldm != "norm" && p[4] == "weight" ? TensorTransform.Conv1x1ToLinear : TensorTransform.None;
                        return ($"{coder}.mid_block.attentions.0.{(names == VaeAttentionNames.Modern ? modern : legacy)}.{p[4]}", transform);
                    }
                }
                return null;
            default:
                return null;
        }
    }

    /// <summary>The LDM key (without prefix) for a diffusers VAE key in either attention naming; null when it has no counterpart.</summary>
    public static (string Key, TensorTransform Transform)? ToLdm(string diffusersKey, int levels)
    {
        var p = diffusersKey.Split('.');
        if (p.Length == 2 && p[0] is "quant_conv" or "post_quant_conv") return (diffusersKey, TensorTransform.None);
        if (p.Length < 3 || p[0] is not ("encoder" or "decoder")) return null;
        string coder = p[0];
        bool decoder = coder == "decoder";
        switch (p[1])
        {
            case "conv_in" or "conv_out" when p.Length == 3:
                return (diffusersKey, TensorTransform.None);
            case "conv_norm_out" when p.Length == 3:
                return ($"{coder}.norm_out.{p[2]}", TensorTransform.None);
            case "down_blocks" or "up_blocks" when p.Length > 5 && p[1] == (decoder ? "up_blocks" : "down_blocks")
                                                   && UnetLayout.TryIndex(p[2], out int i) && i < levels:
            {
                string block = $"{coder}.{(decoder ? "up" : "down")}.{(decoder ? levels - 1 - i : i)}";
                if (p[3] == "resnets" && p.Length == 7 && UnetLayout.TryIndex(p[4], out int j))
                {
                    string? module = p[5] == "conv_shortcut" ? "nin_shortcut" : ResnetModules.Contains(p[5]) ? p[5] : null;
                    return module == null ? null : ($"{block}.block.{j}.{module}.{p[6]}", TensorTransform.None);
                }
                string sampler = decoder ? "upsamplers" : "downsamplers";
                if (p[3] == sampler && p.Length == 7 && p[4] == "0" && p[5] == "conv")
                    return ($"{block}.{(decoder ? "upsample" : "downsample")}.conv.{p[6]}", TensorTransform.None);
                return null;
            }
            case "mid_block" when p.Length > 5 && UnetLayout.TryIndex(p[3], out int index):
            {
                var rest = string.Join('.', p, 4, p.Length - 4);
                if (p[2] == "resnets" && index < 2 && p.Length == 6)
                {
                    string? module = p[4] == "conv_shortcut" ? "nin_shortcut" : ResnetModules.Contains(p[4]) ? p[4] : null;
                    return module == null ? null : ($"{coder}.mid.block_{index + 1}.{module}.{p[5]}", TensorTransform.None);
                }
                if (p[2] != "attentions" || index != 0) return null;
                foreach (var (ldm, modern, legacy) in AttentionParts)
                {
                    foreach (var name in new[] { modern, legacy })
                    {
                        if (!rest.StartsWith(name + ".", StringComparison.Ordinal)) continue;
                        var tail = rest[(name.Length + 1)..];
                        if (tail is not ("weight" or "bias")) return null;
                        var transform = ldm != "norm" && tail == "weight" ? TensorTransform.Conv1x1ToLinear : TensorTransform.None;
                        return ($"{coder}.mid.attn_1.{ldm}.{tail}", transform);
                    }
                }
                return null;
            }
            default:
                return null;
        }
    }

    /// <summary>Resolution levels of an LDM VAE from its keys (number of <c>encoder.down.N</c> blocks).</summary>
    public static int LevelsFromLdmKeys(IEnumerable<string> keys) => CountIndices(keys, LdmPrefixes.Vae + "encoder.down.", "encoder.down.");

    /// <summary>Resolution levels of a diffusers VAE from its keys (number of <c>encoder.down_blocks.N</c>).</summary>
    public static int LevelsFromDiffusersKeys(IEnumerable<string> keys) => CountIndices(keys, "encoder.down_blocks.", "vae/encoder.down_blocks.");

    private static int CountIndices(IEnumerable<string> keys, string prefixA, string prefixB)
    {
        int levels = 0;
        foreach (var key in keys)
        {
            string? rest = key.StartsWith(prefixA, StringComparison.Ordinal) ? key[prefixA.Length..]
                : key.StartsWith(prefixB, StringComparison.Ordinal) ? key[prefixB.Length..] : null;
            if (rest == null) continue;
            int dot = rest.IndexOf('.');
            if (dot > 0 && UnetLayout.TryIndex(rest[..dot], out int i)) levels = Math.Max(levels, i + 1);
        }
        return levels;
    }
}
