using SharpDiffusion.Conversion;

namespace SharpDiffusion.Tests.Conversion;

/// <summary>Writes out every weight name of a diffusers UNet2DConditionModel of a given layout (the way diffusers builds it).</summary>
internal static class SyntheticUnet
{
    private static readonly string[] ResnetParts = ["norm1", "conv1", "time_emb_proj", "norm2", "conv2"];

    private static readonly string[] TransformerParts =
    [
        "norm", "proj_in", "proj_out", "transformer_blocks.0.norm1", "transformer_blocks.0.attn1.to_q", "transformer_blocks.0.attn1.to_out.0",
        "transformer_blocks.0.attn2.to_k", "transformer_blocks.0.ff.net.0.proj", "transformer_blocks.0.ff.net.2",
    ];

    public static List<string> DiffusersKeys(UnetLayout layout)
    {
        var keys = new List<string> { "conv_in.weight", "time_embedding.linear_1.weight", "time_embedding.linear_2.weight", "conv_norm_out.weight", "conv_out.weight" };
        for (int level = 0; level < layout.Levels; level++)
        {
            for (int j = 0; j < layout.ResBlocksPerLevel; j++)
            {
                Resnet(keys, $"down_blocks.{level}.resnets.{j}", shortcut: j == 0 && level > 0);
                if (layout.HasAttention(level)) Transformer(keys, $"down_blocks.{level}.attentions.{j}");
            }
            if (level < layout.Levels - 1) keys.Add($"down_blocks.{level}.downsamplers.0.conv.weight");
        }
        Resnet(keys, "mid_block.resnets.0", false);
        if (layout.MidAttention) Transformer(keys, "mid_block.attentions.0");
        Resnet(keys, "mid_block.resnets.1", false);
        for (int up = 0; up < layout.Levels; up++)
        {
            for (int j = 0; j <= layout.ResBlocksPerLevel; j++)
            {
                Resnet(keys, $"up_blocks.{up}.resnets.{j}", shortcut: true);
                if (layout.HasAttention(layout.Levels - 1 - up)) Transformer(keys, $"up_blocks.{up}.attentions.{j}");
            }
            if (up < layout.Levels - 1) keys.Add($"up_blocks.{up}.upsamplers.0.conv.weight");
        }
        return keys;
    }

    private static void Resnet(List<string> keys, string block, bool shortcut)
    {
        keys.AddRange(ResnetParts.Select(p => $"{block}.{p}.weight"));
        if (shortcut) keys.Add($"{block}.conv_shortcut.weight");
    }

    private static void Transformer(List<string> keys, string block) => keys.AddRange(TransformerParts.Select(p => $"{block}.{p}.weight"));
}
