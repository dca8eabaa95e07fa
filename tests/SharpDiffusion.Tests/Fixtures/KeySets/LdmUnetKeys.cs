using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fixtures.KeySets;

/// <summary>
/// Generates the state-dict keys of LDM's <c>openaimodel.UNetModel</c> (time_embed, label_emb, input_blocks,
/// middle_block, output_blocks, out) for any <see cref="LdmUnetConfig"/>, in module order, following the
/// constructor's loops: ResBlocks with skip convs where channels change, SpatialTransformers with GEGLU
/// feed-forward, Downsample <c>op</c> and Upsample <c>conv</c>.
/// </summary>
public static class LdmUnetKeys
{
    public static List<KeyEntry> Generate(LdmUnetConfig c, string prefix = "model.diffusion_model.", TensorDType dtype = TensorDType.F32)
    {
        var keys = new List<KeyEntry>();
        void Add(string name, params long[] shape) => keys.Add(new KeyEntry(prefix + name, dtype, shape));
        int mc = c.ModelChannels, ted = c.TimeEmbedDim;

        Add("time_embed.0.weight", ted, mc);
        Add("time_embed.0.bias", ted);
        Add("time_embed.2.weight", ted, ted);
        Add("time_embed.2.bias", ted);
        if (c.AdmInChannels > 0)
        {
            Add("label_emb.0.0.weight", ted, c.AdmInChannels);
            Add("label_emb.0.0.bias", ted);
            Add("label_emb.0.2.weight", ted, ted);
            Add("label_emb.0.2.bias", ted);
        }

        Add("input_blocks.0.0.weight", mc, c.InChannels, 3, 3);
        Add("input_blocks.0.0.bias", mc);
        var skipChannels = new Stack<int>();
        skipChannels.Push(mc);
        int ch = mc, block = 1;
        for (int level = 0; level < c.ChannelMult.Length; level++)
        {
            for (int r = 0; r < c.NumResBlocks; r++)
            {
                int output = c.ChannelMult[level] * mc;
                ResBlock(Add, $"input_blocks.{block}.0.", ch, output, ted);
                ch = output;
                if (c.TransformerDepth[level] > 0) SpatialTransformer(Add, $"input_blocks.{block}.1.", ch, c.TransformerDepth[level], c);
                skipChannels.Push(ch);
                block++;
            }
            if (level != c.ChannelMult.Length - 1)
            {
                Add($"input_blocks.{block}.0.op.weight", ch, ch, 3, 3);
                Add($"input_blocks.{block}.0.op.bias", ch);
                skipChannels.Push(ch);
                block++;
            }
        }

        ResBlock(Add, "middle_block.0.", ch, ch, ted);
        SpatialTransformer(Add, "middle_block.1.", ch, c.TransformerDepthMiddle, c);
        ResBlock(Add, "middle_block.2.", ch, ch, ted);

        block = 0;
        for (int level = c.ChannelMult.Length - 1; level >= 0; level--)
        {
            for (int i = 0; i <= c.NumResBlocks; i++)
            {
                int skip = skipChannels.Pop();
                int output = c.ChannelMult[level] * mc;
                ResBlock(Add, $"output_blocks.{block}.0.", ch + skip, output, ted);
                ch = output;
                int sub = 1;
                if (c.TransformerDepth[level] > 0)
                {
                    SpatialTransformer(Add, $"output_blocks.{block}.1.", ch, c.TransformerDepth[level], c);
                    sub = 2;
                }
                if (level > 0 && i == c.NumResBlocks)
                {
                    Add($"output_blocks.{block}.{sub}.conv.weight", ch, ch, 3, 3);
                    Add($"output_blocks.{block}.{sub}.conv.bias", ch);
                }
                block++;
            }
        }

        Add("out.0.weight", mc);
        Add("out.0.bias", mc);
        Add("out.2.weight", c.OutChannels, mc, 3, 3);
        Add("out.2.bias", c.OutChannels);
        return keys;
    }

    private static void ResBlock(Action<string, long[]> add, string p, int input, int output, int timeEmbed)
    {
        add(p + "in_layers.0.weight", new long[] { input });
        add(p + "in_layers.0.bias", new long[] { input });
        add(p + "in_layers.2.weight", new long[] { output, input, 3, 3 });
        add(p + "in_layers.2.bias", new long[] { output });
        add(p + "emb_layers.1.weight", new long[] { output, timeEmbed });
        add(p + "emb_layers.1.bias", new long[] { output });
        add(p + "out_layers.0.weight", new long[] { output });
        add(p + "out_layers.0.bias", new long[] { output });
        add(p + "out_layers.3.weight", new long[] { output, output, 3, 3 });
        add(p + "out_layers.3.bias", new long[] { output });
        if (input != output)
        {
            add(p + "skip_connection.weight", new long[] { output, input, 1, 1 });
            add(p + "skip_connection.bias", new long[] { output });
        }
    }

    private static void SpatialTransformer(Action<string, long[]> add, string p, int ch, int depth, LdmUnetConfig c)
    {
        long[] Proj() => c.UseLinearInTransformer ? new long[] { ch, ch } : new long[] { ch, ch, 1, 1 };
        add(p + "norm.weight", new long[] { ch });
        add(p + "norm.bias", new long[] { ch });
        add(p + "proj_in.weight", Proj());
        add(p + "proj_in.bias", new long[] { ch });
        for (int d = 0; d < depth; d++)
        {
            var b = p + $"transformer_blocks.{d}.";
            Attention(add, b + "attn1.", ch, ch);
            add(b + "ff.net.0.proj.weight", new long[] { ch * 8, ch }); // GEGLU: value and gate halves of 4x width
            add(b + "ff.net.0.proj.bias", new long[] { ch * 8 });
            add(b + "ff.net.2.weight", new long[] { ch, ch * 4 });
            add(b + "ff.net.2.bias", new long[] { ch });
            Attention(add, b + "attn2.", ch, c.ContextDim);
            foreach (var norm in new[] { "norm1", "norm2", "norm3" })
            {
                add(b + norm + ".weight", new long[] { ch });
                add(b + norm + ".bias", new long[] { ch });
            }
        }
        add(p + "proj_out.weight", Proj());
        add(p + "proj_out.bias", new long[] { ch });
    }

    private static void Attention(Action<string, long[]> add, string p, int ch, int context)
    {
        add(p + "to_q.weight", new long[] { ch, ch });
        add(p + "to_k.weight", new long[] { ch, context });
        add(p + "to_v.weight", new long[] { ch, context });
        add(p + "to_out.0.weight", new long[] { ch, ch });
        add(p + "to_out.0.bias", new long[] { ch });
    }
}
