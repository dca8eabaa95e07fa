using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// LDM SpatialTransformer: GroupNorm(32, eps 1e-6), proj_in (1×1 conv, or Linear after flattening when
/// use_linear), transformer_blocks.N, proj_out, residual. The sequence layout is (b, h·w, c).
/// Its Linear/Conv layers are invoked with call() (not forward) so that forward hooks run: LoRA training adds its
/// trainable branch that way (Training/LoraTrainingHooks).
/// </summary>
public sealed class SpatialTransformer : NamedModule
{
    private readonly GroupNorm32 _norm;
    private readonly nn.Module<Tensor, Tensor> _projIn, _projOut;
    private readonly BasicTransformerBlock[] _blocks;
    private readonly bool _linear;
    private readonly int _inner;

    public SpatialTransformer(LayerFactory f, int channels, int heads, int dimHead, int depth, int contextDim, bool useLinear)
        : base(nameof(SpatialTransformer))
    {
        _linear = useLinear;
        _inner = heads * dimHead;
        _norm = Child("norm", f.GroupNorm(channels, 1e-6));
        _projIn = Child("proj_in", useLinear ? f.Linear(channels, _inner) : (nn.Module<Tensor, Tensor>)f.Conv(channels, _inner, 1));
        var list = Child("transformer_blocks", new IndexedModules());
        _blocks = new BasicTransformerBlock[depth];
        for (int i = 0; i < depth; i++) _blocks[i] = list.Add(i, new BasicTransformerBlock(f, _inner, heads, dimHead, contextDim));
        _projOut = Child("proj_out", useLinear ? f.Linear(_inner, channels) : (nn.Module<Tensor, Tensor>)f.Conv(_inner, channels, 1));
    }

    public Tensor Forward(Tensor x, Tensor context)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], c = x.shape[1], hgt = x.shape[2], wid = x.shape[3];
        var h = _norm.Forward(x);
        if (!_linear) h = _projIn.call(h);
        h = h.permute(0, 2, 3, 1).reshape(b, hgt * wid, h.shape[1]);
        if (_linear) h = _projIn.call(h);
        foreach (var block in _blocks) h = block.Forward(h, context);
        if (_linear) h = _projOut.call(h);
        h = h.reshape(b, hgt, wid, h.shape[2]).permute(0, 3, 1, 2).contiguous();
        if (!_linear) h = _projOut.call(h);
        return h.add_(x).MoveToOuterDisposeScope();
    }
}
