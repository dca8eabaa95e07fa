using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Encoders;

/// <summary>Multi-head attention arithmetic shared by both layouts: q is scaled before the product, as torch's MultiheadAttention and HF CLIP do.</summary>
internal static class CausalSelfAttention
{
    /// <param name="q">[B, T, W] projected queries (unscaled).</param>
    /// <param name="k">[B, T, W] keys.</param>
    /// <param name="v">[B, T, W] values.</param>
    /// <param name="heads">Head count; W must divide by it.</param>
    /// <param name="mask">[T, T] additive mask (−inf above the diagonal).</param>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, int heads, Tensor mask)
    {
        long b = q.shape[0], t = q.shape[1], w = q.shape[2];
        long headDim = w / heads;
        double scale = 1.0 / Math.Sqrt(headDim);
        using var qh = (q * scale).reshape(b, t, heads, headDim).transpose(1, 2);
        using var kh = k.reshape(b, t, heads, headDim).transpose(1, 2);
        using var vh = v.reshape(b, t, heads, headDim).transpose(1, 2);
        using var scores = matmul(qh, kh.transpose(-1, -2)) + mask;
        using var probs = scores.softmax(-1);
        using var o = matmul(probs, vh);
        return o.transpose(1, 2).reshape(b, t, w);
    }

    /// <summary>The causal mask for <paramref name="length"/> tokens: 0 on and below the diagonal, −inf above.</summary>
    public static Tensor CausalMask(long length, ScalarType dtype, Device device) =>
        full(length, length, float.NegativeInfinity, dtype: dtype, device: device).triu(1);
}
