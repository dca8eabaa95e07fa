using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// The seam a U-Net attention calls before its key/value projections (A1111's <c>apply_hypernetworks</c> in
/// <c>attention_CrossAttention_forward</c>): k = to_k(K), v = to_v(V) with (K, V) = Transform(context), where context
/// is the cross-attention context, or x itself in self-attention. Queries are not affected.
/// </summary>
public interface IAttentionContextHook
{
    /// <param name="context">[B, tokens, width] attention context.</param>
    /// <returns>New tensors (the caller disposes them) for the key and value projections.</returns>
    (Tensor K, Tensor V) Transform(Tensor context);
}
