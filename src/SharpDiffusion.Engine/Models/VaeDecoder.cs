using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// ldm model.Decoder: conv_in, mid.block_1/attn_1/block_2, up.{i}.block.{j} (num_res_blocks + 1 per level,
/// visited from the deepest level), up.{i}.upsample.conv (nearest ×2, 3×3 conv) except at level 0,
/// norm_out, swish, conv_out.
/// </summary>
public sealed class VaeDecoder : NamedModule
{
    private readonly Conv2d _convIn, _convOut;
    private readonly (VaeResnetBlock[] Blocks, VaeAttnBlock[] Attn, Conv2d? Up)[] _levels;
    private readonly VaeResnetBlock _mid1, _mid2;
    private readonly VaeAttnBlock _midAttn;
    private readonly GroupNorm32 _normOut;

    public VaeDecoder(LayerFactory f, VaeConfig config) : base("Decoder")
    {
        int ch = config.Ch;
        int blockIn = ch * config.ChMult[^1];
        _convIn = Child("conv_in", f.Conv(config.ZChannels, blockIn, 3, padding: 1));
        var mid = Child("mid", new LevelModules());
        _mid1 = mid.AddNamed("block_1", new VaeResnetBlock(f, blockIn, blockIn));
        _midAttn = mid.AddNamed("attn_1", new VaeAttnBlock(f, blockIn));
        _mid2 = mid.AddNamed("block_2", new VaeResnetBlock(f, blockIn, blockIn));

        // Upstream builds levels deepest first and inserts each at the front: "up.{i}" is level i.
        _levels = new (VaeResnetBlock[], VaeAttnBlock[], Conv2d?)[config.Levels];
        var holders = new LevelModules[config.Levels];
        for (int level = config.Levels - 1; level >= 0; level--)
        {
            var holder = holders[level] = new LevelModules();
            var blockList = holder.Add("block");
            var attnList = holder.Add("attn");
            int blockOut = ch * config.ChMult[level];
            var blocks = new VaeResnetBlock[config.NumResBlocks + 1];
            var attn = new List<VaeAttnBlock>();
            for (int j = 0; j <= config.NumResBlocks; j++)
            {
                blocks[j] = blockList.Add(j, new VaeResnetBlock(f, blockIn, blockOut));
                blockIn = blockOut;
                if (config.AttentionLevels[level]) attn.Add(attnList.Add(j, new VaeAttnBlock(f, blockIn)));
            }
            Conv2d? upConv = null;
            if (level != 0) upConv = holder.AddConv("upsample", f.Conv(blockIn, blockIn, 3, padding: 1));
            _levels[level] = (blocks, attn.ToArray(), upConv);
        }
        var up = Child("up", new IndexedModules());
        for (int level = 0; level < config.Levels; level++) up.Add(level, holders[level]);
        _normOut = Child("norm_out", f.GroupNorm(blockIn, 1e-6));
        _convOut = Child("conv_out", f.Conv(blockIn, config.OutChannels, 3, padding: 1));
    }

    public Tensor Forward(Tensor z)
    {
        using var scope = NewDisposeScope();
        var h = _convIn.forward(z);
        h = _mid2.Forward(_midAttn.Forward(_mid1.Forward(h)));
        for (int level = _levels.Length - 1; level >= 0; level--)
        {
            var (blocks, attn, upConv) = _levels[level];
            for (int j = 0; j < blocks.Length; j++)
            {
                var next = blocks[j].Forward(h);
                h.Dispose();
                h = next;
                if (attn.Length > 0)
                {
                    next = attn[j].Forward(h);
                    h.Dispose();
                    h = next;
                }
            }
            if (upConv is not null)
            {
                var up = UNetUpsample.NearestUpsample2x(h);
                h.Dispose();
                h = upConv.forward(up);
                up.Dispose();
            }
        }
        h = NarrowOutputConvolution.Forward(_convOut, F.silu(_normOut.Forward(h), inplace: true));
        return h.MoveToOuterDisposeScope();
    }
}
