using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// ldm model.ResnetBlock without time embedding: norm1, swish, conv1, norm2, swish, conv2, plus x
/// (through the 1×1 nin_shortcut when the channel count changes). GroupNorm(32, eps 1e-6).
/// </summary>
public sealed class VaeResnetBlock : NamedModule
{
    private readonly GroupNorm32 _norm1, _norm2;
    private readonly Conv2d _conv1, _conv2;
    private readonly Conv2d? _shortcut;

    public VaeResnetBlock(LayerFactory f, int inChannels, int outChannels) : base("ResnetBlock")
    {
        _norm1 = Child("norm1", f.GroupNorm(inChannels, 1e-6));
        _conv1 = Child("conv1", f.Conv(inChannels, outChannels, 3, padding: 1));
        _norm2 = Child("norm2", f.GroupNorm(outChannels, 1e-6));
        _conv2 = Child("conv2", f.Conv(outChannels, outChannels, 3, padding: 1));
        if (inChannels != outChannels) _shortcut = Child("nin_shortcut", f.Conv(inChannels, outChannels, 1));
    }

    public Tensor Forward(Tensor x)
    {
        // Intermediates are released as soon as they are consumed: at 512x512 each is 64-128 MB, and holding them all
        // until the block ends set the peak memory of the whole decode.
        using var scope = NewDisposeScope();
        Tensor h;
        using (var n1 = F.silu(_norm1.Forward(x), inplace: true)) h = _conv1.forward(n1);
        using (var n2 = F.silu(_norm2.Forward(h), inplace: true))
        {
            h.Dispose();
            h = _conv2.forward(n2);
        }
        if (_shortcut is null) return h.add_(x).MoveToOuterDisposeScope();
        using var skip = _shortcut.forward(x);
        return h.add_(skip).MoveToOuterDisposeScope();
    }
}
