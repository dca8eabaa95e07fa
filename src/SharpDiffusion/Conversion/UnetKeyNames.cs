namespace SharpDiffusion.Conversion;

/// <summary>
/// U-Net tensor names: LDM (<c>input_blocks.4.1.proj_in.weight</c>) to diffusers (<c>down_blocks.1.attentions.0.proj_in.weight</c>)
/// and back, derived from the block structure. Keys here are without the <c>model.diffusion_model.</c> prefix.
/// Spatial-transformer internals have the same names in both layouts; res-block internals are renamed.
/// </summary>
public static class UnetKeyNames
{
    // LDM ResBlock sub-modules -> diffusers ResnetBlock2D names.
    private static readonly (string Ldm, string Diffusers)[] ResnetParts =
    [
        ("in_layers.0", "norm1"),
        ("in_layers.2", "conv1"),
        ("emb_layers.1", "time_emb_proj"),
        ("out_layers.0", "norm2"),
        ("out_layers.3", "conv2"),
        ("skip_connection", "conv_shortcut"),
    ];

    /// <summary>The diffusers key for an LDM U-Net key, or null when it has no counterpart.</summary>
    public static string? ToDiffusers(string ldmKey, UnetLayout layout)
    {
        var p = ldmKey.Split('.');
        int n = layout.ResBlocksPerLevel, perLevel = n + 1;
        switch (p[0])
        {
            case "time_embed" when p.Length > 2:
                return p[1] switch { "0" => Join("time_embedding.linear_1", p, 2), "2" => Join("time_embedding.linear_2", p, 2), _ => null };
            case "label_emb" when p.Length > 3 && p[1] == "0":
                return p[2] switch { "0" => Join("add_embedding.linear_1", p, 3), "2" => Join("add_embedding.linear_2", p, 3), _ => null };
            case "out" when p.Length > 2:
                return p[1] switch { "0" => Join("conv_norm_out", p, 2), "2" => Join("conv_out", p, 2), _ => null };
            case "input_blocks" when p.Length > 3 && UnetLayout.TryIndex(p[1], out int b) && UnetLayout.TryIndex(p[2], out int s):
            {
                if (b == 0) return s == 0 ? Join("conv_in", p, 3) : null;
                int level = (b - 1) / perLevel, j = (b - 1) % perLevel;
                if (level >= layout.Levels) return null;
                string block = $"down_blocks.{level}";
                if (j < n)
                {
                    if (s == 0) return Resnet($"{block}.resnets.{j}", p, 3);
                    if (s == 1 && layout.HasAttention(level)) return Join($"{block}.attentions.{j}", p, 3);
                    return null;
                }
                return level < layout.Levels - 1 && s == 0 && p[3] == "op" && p.Length > 4 ? Join($"{block}.downsamplers.0.conv", p, 4) : null;
            }
            case "middle_block" when p.Length > 2 && UnetLayout.TryIndex(p[1], out int s):
                return (s, layout.MidAttention) switch
                {
                    (0, _) => Resnet("mid_block.resnets.0", p, 2),
                    (1, true) => Join("mid_block.attentions.0", p, 2),
                    (1, false) or (2, true) => Resnet("mid_block.resnets.1", p, 2),
                    _ => null,
                };
            case "output_blocks" when p.Length > 3 && UnetLayout.TryIndex(p[1], out int b) && UnetLayout.TryIndex(p[2], out int s):
            {
                int up = b / perLevel, j = b % perLevel;
                if (up >= layout.Levels) return null;
                bool attention = layout.HasAttention(layout.Levels - 1 - up);
                string block = $"up_blocks.{up}";
                if (s == 0) return Resnet($"{block}.resnets.{j}", p, 3);
                if (s == 1 && attention) return Join($"{block}.attentions.{j}", p, 3);
                bool upsampler = j == n && up < layout.Levels - 1 && s == (attention ? 2 : 1);
                return upsampler && p[3] == "conv" && p.Length > 4 ? Join($"{block}.upsamplers.0.conv", p, 4) : null;
            }
            default:
                return null;
        }
    }

    /// <summary>The LDM key (without prefix) for a diffusers U-Net key, or null when it has no counterpart.</summary>
    public static string? ToLdm(string diffusersKey, UnetLayout layout)
    {
        var p = diffusersKey.Split('.');
        int n = layout.ResBlocksPerLevel, perLevel = n + 1;
        switch (p[0])
        {
            case "conv_in" when p.Length > 1: return Join("input_blocks.0.0", p, 1);
            case "conv_norm_out" when p.Length > 1: return Join("out.0", p, 1);
            case "conv_out" when p.Length > 1: return Join("out.2", p, 1);
            case "time_embedding" when p.Length > 2:
                return p[1] switch { "linear_1" => Join("time_embed.0", p, 2), "linear_2" => Join("time_embed.2", p, 2), _ => null };
            case "add_embedding" when p.Length > 2:
                return p[1] switch { "linear_1" => Join("label_emb.0.0", p, 2), "linear_2" => Join("label_emb.0.2", p, 2), _ => null };
            case "down_blocks" when p.Length > 4 && UnetLayout.TryIndex(p[1], out int level) && level < layout.Levels:
            {
                if (p[2] == "downsamplers" && p[3] == "0" && p[4] == "conv" && p.Length > 5 && level < layout.Levels - 1)
                    return Join($"input_blocks.{(level + 1) * perLevel}.0.op", p, 5);
                if (!UnetLayout.TryIndex(p[3], out int j) || j >= n) return null;
                int b = 1 + level * perLevel + j;
                if (p[2] == "resnets") return ResnetToLdm($"input_blocks.{b}.0", p, 4);
                if (p[2] == "attentions" && layout.HasAttention(level)) return Join($"input_blocks.{b}.1", p, 4);
                return null;
            }
            case "mid_block" when p.Length > 3 && UnetLayout.TryIndex(p[2], out int j):
                return (p[1], j, layout.MidAttention) switch
                {
                    ("resnets", 0, _) => ResnetToLdm("middle_block.0", p, 3),
                    ("resnets", 1, true) => ResnetToLdm("middle_block.2", p, 3),
                    ("resnets", 1, false) => ResnetToLdm("middle_block.1", p, 3),
                    ("attentions", 0, true) => Join("middle_block.1", p, 3),
                    _ => null,
                };
            case "up_blocks" when p.Length > 4 && UnetLayout.TryIndex(p[1], out int up) && up < layout.Levels:
            {
                bool attention = layout.HasAttention(layout.Levels - 1 - up);
                if (p[2] == "upsamplers" && p[3] == "0" && p[4] == "conv" && p.Length > 5 && up < layout.Levels - 1)
                    return Join($"output_blocks.{up * perLevel + n}.{(attention ? 2 : 1)}.conv", p, 5);
                if (!UnetLayout.TryIndex(p[3], out int j) || j > n) return null;
                int b = up * perLevel + j;
                if (p[2] == "resnets") return ResnetToLdm($"output_blocks.{b}.0", p, 4);
                if (p[2] == "attentions" && attention) return Join($"output_blocks.{b}.1", p, 4);
                return null;
            }
            default:
                return null;
        }
    }

    private static string? Resnet(string block, string[] p, int from)
    {
        var rest = string.Join('.', p, from, p.Length - from);
        foreach (var (ldm, diffusers) in ResnetParts)
        {
            if (rest.StartsWith(ldm + ".", StringComparison.Ordinal)) return $"{block}.{diffusers}{rest[ldm.Length..]}";
        }
        return null;
    }

    private static string? ResnetToLdm(string block, string[] p, int from)
    {
        var rest = string.Join('.', p, from, p.Length - from);
        foreach (var (ldm, diffusers) in ResnetParts)
        {
            if (rest.StartsWith(diffusers + ".", StringComparison.Ordinal)) return $"{block}.{ldm}{rest[diffusers.Length..]}";
        }
        return null;
    }

    private static string Join(string head, string[] p, int from) => head + "." + string.Join('.', p, from, p.Length - from);
}
