using System.Runtime.Intrinsics;

namespace SharpDiffusion.Workshop;

/// <summary>
/// float16 &lt;-&gt; float32 conversion sixteen values at a time with integer vector arithmetic, giving the same bits as
/// .NET's scalar <c>(float)Half</c> and <c>(Half)float</c> casts (round to nearest, ties to even; subnormals exact;
/// infinities kept; overflow to infinity). A group of sixteen that holds a NaN is converted with the scalar casts, so NaN
/// payloads come out exactly as the runtime makes them. The scalar casts also handle the tail and machines without
/// 256-bit vectors.
/// </summary>
internal static class HalfConversion
{
    private const int Lanes = 16; // one Vector256<ushort> of halves = two Vector256<uint>/<float>

    public static void ToSingle(ReadOnlySpan<Half> source, Span<float> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination is shorter than the source", nameof(destination));
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var bits = System.Runtime.InteropServices.MemoryMarshal.Cast<Half, ushort>(source);
            var magnitudeMax = Vector256.Create((ushort)0x7C00);
            for (; i <= source.Length - Lanes; i += Lanes)
            {
                var h = Vector256.Create(bits.Slice(i, Lanes));
                if (Vector256.GreaterThanAny(h & Vector256.Create((ushort)0x7FFF), magnitudeMax))
                {
                    for (int k = i; k < i + Lanes; k++) destination[k] = (float)source[k];
                    continue;
                }
                var (low, high) = Vector256.Widen(h);
                Widen(low).CopyTo(destination.Slice(i, 8));
                Widen(high).CopyTo(destination.Slice(i + 8, 8));
            }
        }
        for (; i < source.Length; i++) destination[i] = (float)source[i];
    }

    public static void ToHalf(ReadOnlySpan<float> source, Span<Half> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination is shorter than the source", nameof(destination));
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var bits = System.Runtime.InteropServices.MemoryMarshal.Cast<Half, ushort>(destination);
            for (; i <= source.Length - Lanes; i += Lanes)
            {
                var low = Vector256.Create(source.Slice(i, 8));
                var high = Vector256.Create(source.Slice(i + 8, 8));
                if (!Vector256.EqualsAll(low, low) || !Vector256.EqualsAll(high, high)) // NaN != NaN
                {
                    for (int k = i; k < i + Lanes; k++) destination[k] = (Half)source[k];
                    continue;
                }
                Vector256.Narrow(Narrow(low), Narrow(high)).CopyTo(bits.Slice(i, Lanes));
            }
        }
        for (; i < source.Length; i++) destination[i] = (Half)source[i];
    }

    /// <summary>
    /// Half bits (no NaN) in the low 16 bits of each lane to float32: exponent re-biased by 112; infinity gets the
    /// float exponent 255; a subnormal half m * 2^-24 is built as the float 2^-14 + m * 2^-24 minus 2^-14 (exact).
    /// </summary>
    private static Vector256<float> Widen(Vector256<uint> h)
    {
        var magnitude = (h & Vector256.Create(0x7FFFu)) << 13;
        var exponent = magnitude & Vector256.Create(0x0F800000u);
        var rebiased = magnitude + Vector256.Create(0x38000000u);
        var infinity = Vector256.Equals(exponent, Vector256.Create(0x0F800000u));
        var subnormal = Vector256.Equals(exponent, Vector256<uint>.Zero);
        rebiased += infinity & Vector256.Create(0x38000000u);
        var fromSubnormal = (rebiased + Vector256.Create(0x00800000u)).AsSingle() - Vector256.Create(0x38800000u).AsSingle();
        var value = Vector256.ConditionalSelect(subnormal.AsSingle(), fromSubnormal, rebiased.AsSingle());
        return (value.AsUInt32() | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>
    /// float32 (no NaN) to half bits in the low 16 bits of each lane. Normal halves: re-bias and round the 13 dropped
    /// mantissa bits to nearest even with integer adds (a carry into the exponent is the correct result, up to
    /// infinity). Subnormal halves: adding 0.5f lets the FPU round at the 2^-24 position (its round-to-nearest-even),
    /// the low bits are then the half's mantissa. At or above 65536 the result is infinity.
    /// </summary>
    private static Vector256<uint> Narrow(Vector256<float> value)
    {
        var bits = value.AsUInt32();
        var sign = (bits >> 16) & Vector256.Create(0x8000u);
        var magnitude = bits & Vector256.Create(0x7FFFFFFFu);

        var odd = (magnitude >> 13) & Vector256<uint>.One;
        var normal = (magnitude + Vector256.Create(0xC8000FFFu) + odd) >> 13; // 0xC8000000 = -(112 << 23)
        var subnormal = (magnitude.AsSingle() + Vector256.Create(0.5f)).AsUInt32() - Vector256.Create(0x3F000000u);

        var isSubnormal = Vector256.LessThan(magnitude, Vector256.Create(0x38800000u));
        var isOverflow = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x47800000u));
        var result = Vector256.ConditionalSelect(isSubnormal, subnormal, normal);
        result = Vector256.ConditionalSelect(isOverflow, Vector256.Create(0x7C00u), result);
        return result | sign;
    }
}
