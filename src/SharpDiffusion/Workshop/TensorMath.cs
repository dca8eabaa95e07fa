using System.Buffers;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Workshop;

/// <summary>
/// Element-wise merge arithmetic on raw tensor bytes, in float32 as torch does for float32 tensors with a Python
/// float multiplier: the multipliers are rounded to float32 once, each product and sum is rounded to float32 (no
/// fused multiply-add). A tensor is split into chunks computed in parallel into the output buffer; F32 and F16 take
/// direct little-endian paths that give the same bits as <see cref="DTypeConversion"/>.
/// </summary>
internal static class TensorMath
{
    private const int ChunkElements = 1 << 16;

    /// <summary>Re-encodes a tensor (decode to float32, encode as <paramref name="outType"/>) into <paramref name="output"/>.</summary>
    public static void Convert(ReadOnlyMemory<byte> source, TensorDType sourceType, TensorDType outType, Memory<byte> output)
    {
        int inSize = sourceType.ElementSize(), outSize = outType.ElementSize();
        ForEachChunk(source.Length / inSize, (start, n) =>
        {
            var x = ArrayPool<float>.Shared.Rent(n);
            try
            {
                var f = x.AsSpan(0, n);
                Decode(source.Span.Slice((int)(start * inSize), n * inSize), sourceType, f);
                Encode(f, outType, output.Span.Slice((int)(start * outSize), n * outSize));
            }
            finally
            {
                ArrayPool<float>.Shared.Return(x);
            }
        });
    }

    /// <summary>
    /// <c>(1 - m) * a + m * b</c> (weighted sum) or <c>a + m * (b - c)</c> (add difference), all of the same element
    /// count, encoded as <paramref name="outType"/> into <paramref name="output"/>.
    /// </summary>
    public static void Merge(MergeMode mode, double multiplier,
        ReadOnlyMemory<byte> a, TensorDType aType, ReadOnlyMemory<byte> b, TensorDType bType, ReadOnlyMemory<byte> c, TensorDType cType,
        TensorDType outType, Memory<byte> output)
    {
        int aSize = aType.ElementSize(), bSize = bType.ElementSize(), cSize = cType.ElementSize(), outSize = outType.ElementSize();
        ForEachChunk(a.Length / aSize, (start, n) =>
        {
            var fa = ArrayPool<float>.Shared.Rent(n);
            var fb = ArrayPool<float>.Shared.Rent(n);
            var fc = mode == MergeMode.AddDifference ? ArrayPool<float>.Shared.Rent(n) : null;
            try
            {
                var x = fa.AsSpan(0, n);
                var y = fb.AsSpan(0, n);
                Decode(a.Span.Slice((int)(start * aSize), n * aSize), aType, x);
                Decode(b.Span.Slice((int)(start * bSize), n * bSize), bType, y);
                if (fc != null)
                {
                    var z = fc.AsSpan(0, n);
                    Decode(c.Span.Slice((int)(start * cSize), n * cSize), cType, z);
                    AddDifference(x, y, z, multiplier);
                }
                else
                {
                    WeightedSum(x, y, multiplier);
                }
                Encode(x, outType, output.Span.Slice((int)(start * outSize), n * outSize));
            }
            finally
            {
                ArrayPool<float>.Shared.Return(fa);
                ArrayPool<float>.Shared.Return(fb);
                if (fc != null) ArrayPool<float>.Shared.Return(fc);
            }
        });
    }

    /// <summary>
    /// A1111's inpainting / instruct-pix2pix case: A has more input channels (dimension 1) than B (and C); only the
    /// first channels, the ones both have, are merged, the rest stay A's. Tensors are small (conv_in), so whole.
    /// </summary>
    public static byte[] MergeLeadingChannels(MergeMode mode, double multiplier,
        ReadOnlySpan<byte> a, TensorDType aType, long[] aShape, ReadOnlySpan<byte> b, TensorDType bType, long[] bShape,
        ReadOnlySpan<byte> c, TensorDType cType, TensorDType outType)
    {
        var fa = DTypeConversion.ToSingle(a, aType);
        var fb = DTypeConversion.ToSingle(b, bType);
        var fc = mode == MergeMode.AddDifference ? DTypeConversion.ToSingle(c, cType) : [];
        long outer = aShape[0], ca = aShape[1], cb = bShape[1];
        long inner = 1;
        for (int d = 2; d < aShape.Length; d++) inner *= aShape[d];
        Span<float> x = stackalloc float[1], y = stackalloc float[1], z = stackalloc float[1];
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
        return DTypeConversion.FromSingle(fa, outType);
    }

    /// <summary>
    /// In place: <c>a = (1 - m) * a + m * b</c>; <c>1 - m</c> is taken in double, as Python does, then rounded. The
    /// vector loop does the same separately rounded multiplies and add as the scalar tail (.NET never contracts a * b + c into a fused multiply-add).
    /// </summary>
    public static void WeightedSum(Span<float> a, ReadOnlySpan<float> b, double multiplier)
    {
        float wa = (float)(1 - multiplier), wb = (float)multiplier;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(wa);
            var vb = Vector256.Create(wb);
            for (; i <= a.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var x = Vector256.Create(a.Slice(i, Vector256<float>.Count));
                var y = Vector256.Create(b.Slice(i, Vector256<float>.Count));
                (va * x + vb * y).CopyTo(a.Slice(i, Vector256<float>.Count));
            }
        }
        for (; i < a.Length; i++) a[i] = wa * a[i] + wb * b[i];
    }

    /// <summary>In place: <c>a = a + m * (b - c)</c>.</summary>
    public static void AddDifference(Span<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, double multiplier)
    {
        float m = (float)multiplier;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vm = Vector256.Create(m);
            for (; i <= a.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var x = Vector256.Create(a.Slice(i, Vector256<float>.Count));
                var y = Vector256.Create(b.Slice(i, Vector256<float>.Count));
                var z = Vector256.Create(c.Slice(i, Vector256<float>.Count));
                (x + vm * (y - z)).CopyTo(a.Slice(i, Vector256<float>.Count));
            }
        }
        for (; i < a.Length; i++) a[i] = a[i] + m * (b[i] - c[i]);
    }

    private static void ForEachChunk(long count, Action<long, int> body)
    {
        long chunks = (count + ChunkElements - 1) / ChunkElements;
        if (chunks <= 1)
        {
            if (count > 0) body(0, (int)count);
            return;
        }
        Parallel.For(0L, chunks, k =>
        {
            long start = k * ChunkElements;
            body(start, (int)Math.Min(ChunkElements, count - start));
        });
    }

    private static void Decode(ReadOnlySpan<byte> source, TensorDType type, Span<float> destination)
    {
        if (BitConverter.IsLittleEndian && type == TensorDType.F32)
        {
            MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
        }
        else if (BitConverter.IsLittleEndian && type == TensorDType.F16)
        {
            HalfConversion.ToSingle(MemoryMarshal.Cast<byte, Half>(source), destination);
        }
        else
        {
            DTypeConversion.ToSingle(source, type, destination);
        }
    }

    private static void Encode(ReadOnlySpan<float> source, TensorDType type, Span<byte> destination)
    {
        if (BitConverter.IsLittleEndian && type == TensorDType.F32)
        {
            MemoryMarshal.AsBytes(source).CopyTo(destination);
        }
        else if (BitConverter.IsLittleEndian && type == TensorDType.F16)
        {
            HalfConversion.ToHalf(source, MemoryMarshal.Cast<byte, Half>(destination));
        }
        else
        {
            DTypeConversion.FromSingle(source, type, destination);
        }
    }
}
