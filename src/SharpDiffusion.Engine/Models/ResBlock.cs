using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// openaimodel.ResBlock (no scale-shift norm, no up/down): in_layers = [GroupNorm32, SiLU, conv3x3],
/// emb_layers = [SiLU, Linear], out_layers = [GroupNorm32, SiLU, Dropout, conv3x3], skip_connection = 1×1 conv
/// when the channel count changes. Its Linear/Conv layers are invoked with call() so that forward hooks run (LoCon /
/// LoHa / LoKr training wraps them).
/// </summary>
public sealed class ResBlock : NamedModule
{
    private readonly GroupNorm32 _inNorm;
    private readonly Conv2d _inConv;
    private readonly Linear _embLinear;
    private readonly GroupNorm32 _outNorm;
    private readonly Conv2d _outConv;
    private readonly Conv2d? _skip;

    public ResBlock(LayerFactory f, int channels, int embChannels, int outChannels) : base(nameof(ResBlock))
    {
        var inLayers = Child("in_layers", new IndexedModules());
        _inNorm = inLayers.Add(0, f.GroupNorm(channels, 1e-5));
        _inConv = inLayers.Add(2, f.Conv(channels, outChannels, 3, padding: 1));
        _embLinear = Child("emb_layers", new IndexedModules()).Add(1, f.Linear(embChannels, outChannels));
        var outLayers = Child("out_layers", new IndexedModules());
        _outNorm = outLayers.Add(0, f.GroupNorm(outChannels, 1e-5));
        _outConv = outLayers.Add(3, f.Conv(outChannels, outChannels, 3, padding: 1));
        if (channels != outChannels) _skip = Child("skip_connection", f.Conv(channels, outChannels, 1));
    }

    /// <param name="x">[B, C, H, W].</param>
    /// <param name="embSilu">SiLU(timestep embedding) [B, E]: emb_layers' SiLU is applied once by the caller.</param>
    public Tensor Forward(Tensor x, Tensor embSilu)
    {
        using var scope = NewDisposeScope();
        var h = _inConv.call(F.silu(_inNorm.Forward(x), inplace: true));
        var e = _embLinear.call(embSilu).to(h.dtype);
        h = h.add_(e.unsqueeze(-1).unsqueeze(-1));
        h = _outConv.call(F.silu(_outNorm.Forward(h), inplace: true));
        var skip = _skip is not null ? _skip.call(x) : x;
        return h.add_(skip).MoveToOuterDisposeScope();
    }
}
