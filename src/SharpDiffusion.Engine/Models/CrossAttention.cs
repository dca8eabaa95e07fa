using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// LDM CrossAttention: to_q/to_k/to_v (no bias), to_out.0 (Linear), softmax(q·k^T / sqrt(d))·v per head,
/// computed by scaled_dot_product_attention on [B, heads, L, d] views.
/// Its Linear/Conv layers are invoked with call() (not forward) so that forward hooks run: LoRA training adds its
/// trainable branch that way (Training/LoraTrainingHooks).
/// </summary>
public sealed class CrossAttention : NamedModule
{
    private readonly Linear _toQ, _toK, _toV, _toOut;
    private readonly int _heads, _dimHead;

    public CrossAttention(LayerFactory f, int queryDim, int contextDim, int heads, int dimHead) : base(nameof(CrossAttention))
    {
        _heads = heads;
        _dimHead = dimHead;
        int inner = heads * dimHead;
        _toQ = Child("to_q", f.Linear(queryDim, inner, bias: false));
        _toK = Child("to_k", f.Linear(contextDim, inner, bias: false));
        _toV = Child("to_v", f.Linear(contextDim, inner, bias: false));
        _toOut = Child("to_out", new IndexedModules()).Add(0, f.Linear(inner, queryDim));
    }

    /// <summary>
    /// Transforms the key/value inputs before their projections (A1111 hypernetworks); null leaves the attention as it is.
    /// </summary>
    public IAttentionContextHook? ContextHook { get; set; }

    /// <param name="x">[B, L, C].</param>
    /// <param name="context">[B, S, Cc], or null for self-attention.</param>
    public Tensor Forward(Tensor x, Tensor? context = null)
    {
        using var scope = NewDisposeScope();
        var source = context ?? x;
        long b = x.shape[0], l = x.shape[1], s = source.shape[1];
        var q = _toQ.call(x).view(b, l, _heads, _dimHead).transpose(1, 2);
        var (keyInput, valueInput) = ContextHook is { } hook ? hook.Transform(source) : (source, source);
        var k = _toK.call(keyInput).view(b, s, _heads, _dimHead).transpose(1, 2);
        var v = _toV.call(valueInput).view(b, s, _heads, _dimHead).transpose(1, 2);
        var o = F.scaled_dot_product_attention(q, k, v);
        var merged = o.transpose(1, 2).reshape(b, l, _heads * _dimHead);
        return _toOut.call(merged).MoveToOuterDisposeScope();
    }
}
