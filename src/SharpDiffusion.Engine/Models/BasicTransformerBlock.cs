using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// LDM BasicTransformerBlock: x += attn1(norm1(x)); x += attn2(norm2(x), context); x += ff(norm3(x));
/// LayerNorm eps 1e-5.
/// </summary>
public sealed class BasicTransformerBlock : NamedModule
{
    private readonly CrossAttention _attn1, _attn2;
    private readonly FeedForwardGeglu _ff;
    private readonly LayerNorm _norm1, _norm2, _norm3;

    public BasicTransformerBlock(LayerFactory f, int dim, int heads, int dimHead, int contextDim) : base(nameof(BasicTransformerBlock))
    {
        _attn1 = Child("attn1", new CrossAttention(f, dim, dim, heads, dimHead));
        _ff = Child("ff", new FeedForwardGeglu(f, dim));
        _attn2 = Child("attn2", new CrossAttention(f, dim, contextDim, heads, dimHead));
        _norm1 = Child("norm1", f.LayerNorm(dim));
        _norm2 = Child("norm2", f.LayerNorm(dim));
        _norm3 = Child("norm3", f.LayerNorm(dim));
    }

    public Tensor Forward(Tensor x, Tensor context)
    {
        using var scope = NewDisposeScope();
        var h = _attn1.Forward(_norm1.forward(x)).add_(x);
        h = _attn2.Forward(_norm2.forward(h), context).add_(h);
        h = _ff.Forward(_norm3.forward(h)).add_(h);
        return h.MoveToOuterDisposeScope();
    }
}
