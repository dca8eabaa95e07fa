using SharpDiffusion.Formats;

namespace SharpDiffusion.Workshop;

/// <summary>
/// Element-wise merge arithmetic on raw tensor bytes, in float32 as torch does for float32 tensors with a Python
/// float multiplier: the multipliers are rounded to float32 once, each product and sum is rounded to float32 (no
/// fused multiply-add). Works in chunks so the float copies stay small; the result is encoded to the output type and
/// written to the stream chunk by chunk.
/// </summary>
internal static class TensorMath
{
    private const int ChunkElements = 1 << 16;

    /// <summary>Re-encodes a tensor (decode to float32, encode as <paramref name="outType"/>).</summary>
    public static void Convert(ReadOnlySpan<byte> source, TensorDType sourceType, TensorDType outType, Stream output)
    {
        var values = new float[ChunkElements];
        var encoded = new byte[ChunkElements * outType.ElementSize()];
        int inSize = sourceType.ElementSize(), outSize = outType.ElementSize();
        long count = source.Length / inSize;
        for (long start = 0; start < count; start += ChunkElements)
        {
            int n = (int)Math.Min(ChunkElements, count - start);
            var f = values.AsSpan(0, n);
            DTypeConversion.ToSingle(source.Slice((int)(start * inSize), n * inSize), sourceType, f);
            var bytes = encoded.AsSpan(0, n * outSize);
            DTypeConversion.FromSingle(f, outType, bytes);
            output.Write(bytes);
        }
    }

    /// <summary>
    /// <c>(1 - m) * a + m * b</c> (weighted sum) or <c>a + m * (b - c)</c> (add difference, when <paramref name="c"/> is
    /// given), all three of the same element count.
    /// </summary>
    public static void Merge(MergeMode mode, double multiplier,
        ReadOnlySpan<byte> a, TensorDType aType, ReadOnlySpan<byte> b, TensorDType bType, ReadOnlySpan<byte> c, TensorDType cType,
        TensorDType outType, Stream output)
    {
        var fa = new float[ChunkElements];
        var fb = new float[ChunkElements];
        var fc = new float[mode == MergeMode.AddDifference ? ChunkElements : 0];
        var encoded = new byte[ChunkElements * outType.ElementSize()];
        int aSize = aType.ElementSize(), bSize = bType.ElementSize(), cSize = cType.ElementSize(), outSize = outType.ElementSize();
        long count = a.Length / aSize;
        for (long start = 0; start < count; start += ChunkElements)
        {
            int n = (int)Math.Min(ChunkElements, count - start);
            var x = fa.AsSpan(0, n);
            var y = fb.AsSpan(0, n);
            DTypeConversion.ToSingle(a.Slice((int)(start * aSize), n * aSize), aType, x);
            DTypeConversion.ToSingle(b.Slice((int)(start * bSize), n * bSize), bType, y);
            if (mode == MergeMode.AddDifference)
            {
                var z = fc.AsSpan(0, n);
                DTypeConversion.ToSingle(c.Slice((int)(start * cSize), n * cSize), cType, z);
                AddDifference(x, y, z, multiplier);
            }
            else
            {
                WeightedSum(x, y, multiplier);
            }
            var bytes = encoded.AsSpan(0, n * outSize);
            DTypeConversion.FromSingle(x, outType, bytes);
            output.Write(bytes);
        }
    }

    /// <summary>
    /// A1111's inpainting / instruct-pix2pix case: A has more input channels (dimension 1) than B (and C); only the
    /// first channels, the ones both have, are merged, the rest stay A's. Tensors are small (conv_in), so whole.
    /// </summary>
    public static void MergeLeadingChannels(MergeMode mode, double multiplier,
        ReadOnlySpan<byte> a, TensorDType aType, long[] aShape, ReadOnlySpan<byte> b, TensorDType bType, long[] bShape,
        ReadOnlySpan<byte> c, TensorDType cType, TensorDType outType, Stream output)
    {
        var fa = DTypeConversion.ToSingle(a, aType);
        var fb = DTypeConversion.ToSingle(b, bType);
        var fc = mode == MergeMode.AddDifference ? DTypeConversion.ToSingle(c, cType) : [];
        long outer = aShape[0], ca = aShape[1], cb = bShape[1];
        long inner = 1;
        for (int d = 2; d < aShape.Length; d++) inner *= aShape[d];
        var x = new float[1];
        var y = new float[1];
        var z = new float[1];
        for (long o = 0; o < outer; o++)
            for (long ch = 0; ch < cb; ch++)
                for (long r = 0; r < inner; r++)
                {
                    long i = (o * ca + ch) * inner + r, j = (o * cb + ch) * inner + r;
                    x[0] = fa[i];
                    y[0] = fb[j];
                    if (mode == MergeMode.AddDifference)
                    {
                        z[0] = fc[j];
                        AddDifference(x, y, z, multiplier);
                    }
                    else
                    {
                        WeightedSum(x, y, multiplier);
                    }
                    fa[i] = x[0];
                }
        output.Write(DTypeConversion.FromSingle(fa, outType));
    }

    /// <summary>In place: <c>a = (1 - m) * a + m * b</c>; <c>1 - m</c> is taken in double, as Python does, then rounded.</summary>
    public static void WeightedSum(Span<float> a, ReadOnlySpan<float> b, double multiplier)
    {
        float wa = (float)(1 - multiplier), wb = (float)multiplier;
        for (int i = 0; i < a.Length; i++) a[i] = wa * a[i] + wb * b[i];
    }

    /// <summary>In place: <c>a = a + m * (b - c)</c>.</summary>
    public static void AddDifference(Span<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, double multiplier)
    {
        float m = (float)multiplier;
        for (int i = 0; i < a.Length; i++) a[i] = a[i] + m * (b[i] - c[i]);
    }
}
