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
        using var scope = NewDisposeScope();
        var h = _conv1.forward(F.silu(_norm1.Forward(x), inplace: true));
        h = _conv2.forward(F.silu(_norm2.Forward(h), inplace: true));
        var skip = _shortcut is not null ? _shortcut.forward(x) : x;
        return h.add_(skip).MoveToOuterDisposeScope();
    }
}
