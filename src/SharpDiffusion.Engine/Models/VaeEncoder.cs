using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// ldm model.Encoder: conv_in, down.{i}.block.{j} (+ attn.{j}), down.{i}.downsample.conv (pad right/bottom by 1,
/// 3×3 stride 2) except at the last level, mid.block_1/attn_1/block_2, norm_out, swish, conv_out.
/// </summary>
public sealed class VaeEncoder : NamedModule
{
    private readonly Conv2d _convIn, _convOut;
    private readonly List<(VaeResnetBlock[] Blocks, VaeAttnBlock[] Attn, Conv2d? Down)> _levels = new();
    private readonly VaeResnetBlock _mid1, _mid2;
    private readonly VaeAttnBlock _midAttn;
    private readonly GroupNorm32 _normOut;

    public VaeEncoder(LayerFactory f, VaeConfig config) : base("Encoder")
    {
        int ch = config.Ch;
        _convIn = Child("conv_in", f.Conv(config.InChannels, ch, 3, padding: 1));
        var down = Child("down", new IndexedModules());
        int blockIn = ch;
        for (int level = 0; level < config.Levels; level++)
        {
            var holder = down.Add(level, new LevelModules());
            var blockList = holder.Add("block");
            var attnList = holder.Add("attn");
            int blockOut = ch * config.ChMult[level];
            var blocks = new VaeResnetBlock[config.NumResBlocks];
            var attn = new List<VaeAttnBlock>();
            for (int j = 0; j < config.NumResBlocks; j++)
            {
                blocks[j] = blockList.Add(j, new VaeResnetBlock(f, blockIn, blockOut));
                blockIn = blockOut;
                if (config.AttentionLevels[level]) attn.Add(attnList.Add(j, new VaeAttnBlock(f, blockIn)));
            }
            Conv2d? downConv = null;
            if (level != config.Levels - 1) downConv = holder.AddConv("downsample", f.Conv(blockIn, blockIn, 3, stride: 2));
            _levels.Add((blocks, attn.ToArray(), downConv));
        }
        var mid = Child("mid", new LevelModules());
        _mid1 = mid.AddNamed("block_1", new VaeResnetBlock(f, blockIn, blockIn));
        _midAttn = mid.AddNamed("attn_1", new VaeAttnBlock(f, blockIn));
        _mid2 = mid.AddNamed("block_2", new VaeResnetBlock(f, blockIn, blockIn));
        _normOut = Child("norm_out", f.GroupNorm(blockIn, 1e-6));
        _convOut = Child("conv_out", f.Conv(blockIn, config.DoubleZ ? 2 * config.ZChannels : config.ZChannels, 3, padding: 1));
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = _convIn.forward(x);
        // Intermediates are released as soon as they are consumed: at 512×512 a level's maps are ~130 MB each.
        void Replace(Tensor next)
        {
            h.Dispose();
            h = next;
        }
        foreach (var (blocks, attn, downConv) in _levels)
        {
            for (int j = 0; j < blocks.Length; j++)
            {
                Replace(blocks[j].Forward(h));
                if (attn.Length > 0) Replace(attn[j].Forward(h));
            }
            // Downsample(with_conv): F.pad(x, (0, 1, 0, 1)) then a 3×3 stride-2 conv without padding.
            if (downConv is not null)
            {
                using var padded = F.pad(h, new long[] { 0, 1, 0, 1 });
                Replace(downConv.forward(padded));
            }
        }
        h = _mid2.Forward(_midAttn.Forward(_mid1.Forward(h)));
        h = NarrowOutputConvolution.Forward(_convOut, F.silu(_normOut.Forward(h), inplace: true));
        return h.MoveToOuterDisposeScope();
    }
}
