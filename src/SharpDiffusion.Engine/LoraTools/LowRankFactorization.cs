using static TorchSharp.torch;

namespace SharpDiffusion.Engine.LoraTools;

/// <summary>
/// Truncated SVD of a weight change in float32, as kohya sd-scripts does in <c>extract_lora_from_models.py</c> and
/// <c>resize_lora.py</c>: the matrix is the change flattened to [out, in * kh * kw]; U S Vh gives
/// up = U[:, :r] * S[:r] (all of S goes to up) and down = Vh[:r].
/// </summary>
public static class LowRankFactorization
{
    /// <summary>kohya resize_lora's MIN_SV: a largest singular value at or below this is a zero matrix (rank 1 is kept).</summary>
    public const double ZeroSingularValue = 1e-6;

    /// <summary>
    /// Factors <paramref name="change"/> (shape [out, in] or [out, in, kh, kw]) at rank
    /// min(<paramref name="rank"/>, out, in); with <paramref name="clampQuantile"/> below 1, every value of
    /// up and down is clamped to ± the quantile of all of them (kohya's outlier clamp).
    /// </summary>
    /// <param name="zeroMatrixRankOne">kohya resize: a change whose largest singular value is at most <see cref="ZeroSingularValue"/> keeps rank 1.</param>
    public static LowRankFactors Factor(Tensor change, long rank, double clampQuantile = 1.0, bool zeroMatrixRankOne = false)
    {
        if (change.dim() is not (2 or 4)) throw new ArgumentException($"a weight change must be 2-D or 4-D, not [{string.Join(", ", change.shape)}]");
        if (rank < 1) throw new ArgumentOutOfRangeException(nameof(rank), "rank must be at least 1");
        using var scope = NewDisposeScope();
        long outDim = change.shape[0], inDim = change.shape[1];
        var matrix = change.to(ScalarType.Float32).reshape(outDim, -1);
        // kohya: "LoRA rank cannot exceed the original dim" -- out and in channels, not in * kh * kw.
        long r = Math.Min(rank, Math.Min(outDim, inDim));

        var (u, s, vh) = linalg.svd(matrix, fullMatrices: false);
        if (zeroMatrixRankOne && s[0].item<float>() <= ZeroSingularValue) r = 1;
        var squares = s.to(ScalarType.Float64).square();
        double total = squares.sum().item<double>();
        double kept = total > 0 ? squares.narrow(0, 0, r).sum().item<double>() / total : 1.0;

        var up = u.narrow(1, 0, r) * s.narrow(0, 0, r).unsqueeze(0);
        var down = vh.narrow(0, 0, r);
        if (clampQuantile < 1.0)
        {
            double hi = Quantile(cat([up.flatten(), down.flatten()]), clampQuantile);
            // kohya clamps to [-q, q] of the signed values; a non-positive q (all values <= 0) would empty the range.
            if (hi > 0)
            {
                up = up.clamp(-hi, hi);
                down = down.clamp(-hi, hi);
            }
        }
        if (change.dim() == 4)
        {
            up = up.reshape(outDim, r, 1, 1);
            down = down.reshape(r, inDim, change.shape[2], change.shape[3]);
        }
        return new LowRankFactors(up.contiguous().MoveToOuterDisposeScope(), down.contiguous().MoveToOuterDisposeScope(), kept);
    }

    /// <summary>torch.quantile's default ("linear" interpolation between the two nearest ranks) of a 1-D tensor.</summary>
    public static double Quantile(Tensor values, double q)
    {
        if (q is < 0 or > 1 || double.IsNaN(q)) throw new ArgumentOutOfRangeException(nameof(q), "a quantile lies in [0, 1]");
        using var scope = NewDisposeScope();
        var sorted = values.flatten().to(ScalarType.Float64).sort().Values;
        long n = sorted.shape[0];
        if (n == 0) throw new ArgumentException("the quantile of no values is undefined");
        double position = q * (n - 1);
        long lo = (long)Math.Floor(position), hi = (long)Math.Ceiling(position);
        double a = sorted[lo].item<double>(), b = sorted[hi].item<double>();
        return a + (b - a) * (position - lo);
    }
}
