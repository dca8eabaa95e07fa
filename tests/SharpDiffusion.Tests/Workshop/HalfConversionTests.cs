using System.Runtime.InteropServices;
using SharpDiffusion.Formats;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

/// <summary>
/// The vectorised fp16 conversion and merge arithmetic give the same bits as .NET's scalar casts and the scalar
/// formulas: every half value, floats from every exponent (subnormal, rounding ties, overflow, NaN), and odd lengths
/// so the scalar tail runs too.
/// </summary>
public sealed class HalfConversionTests
{
    private static int BitsOf(float f) => BitConverter.SingleToInt32Bits(f);

    [Fact]
    public void Every_half_value_widens_to_the_runtime_cast_bits()
    {
        var halves = new Half[65536 + 5]; // 5 extra: the scalar tail
        for (int i = 0; i < halves.Length; i++) halves[i] = BitConverter.UInt16BitsToHalf((ushort)(i & 0xFFFF));
        var floats = new float[halves.Length];
        HalfConversion.ToSingle(halves, floats);
        for (int i = 0; i < halves.Length; i++)
            Assert.True(BitsOf((float)halves[i]) == BitsOf(floats[i]), $"half 0x{i & 0xFFFF:X4}: {floats[i]} instead of {(float)halves[i]}");
    }

    /// <summary>Floats around every half boundary and a spread over all 2^32 bit patterns.</summary>
    private static float[] InterestingFloats()
    {
        var bits = new List<uint>();
        for (uint x = 0; x < uint.MaxValue - 40_000; x += 40_009) bits.Add(x); // every exponent, both signs, NaNs included
        foreach (uint edge in new uint[]
                 {
                     0x33000000, 0x33800000, 0x38000000, 0x387FC000, 0x38800000, 0x38801000, 0x477FE000, 0x477FF000,
                     0x47800000, 0x7F7FFFFF, 0x7F800000, 0x7F800001, 0x7FC00000, 0x7FFFFFFF, 0x3F800000, 0x3F801000,
                 })
            for (int d = -300; d <= 300; d++)
            {
                bits.Add((uint)(edge + d));
                bits.Add((uint)(edge + d) | 0x80000000);
            }
        // Exact ties at the rounding position (low 13 bits = 0x1000) with even and odd kept mantissas.
        var random = new Random(7);
        for (int i = 0; i < 20_000; i++) bits.Add(((uint)random.Next(0x33000000, 0x47800000) & ~0x1FFFu) | 0x1000);
        return bits.Select(BitConverter.UInt32BitsToSingle).ToArray();
    }

    [Fact]
    public void Floats_narrow_to_the_runtime_cast_bits_including_ties_subnormals_overflow_and_nan()
    {
        var floats = InterestingFloats();
        var halves = new Half[floats.Length];
        HalfConversion.ToHalf(floats, halves);
        for (int i = 0; i < floats.Length; i++)
        {
            ushort expected = BitConverter.HalfToUInt16Bits((Half)floats[i]), actual = BitConverter.HalfToUInt16Bits(halves[i]);
            Assert.True(expected == actual, $"float 0x{BitConverter.SingleToUInt32Bits(floats[i]):X8}: half 0x{actual:X4} instead of 0x{expected:X4}");
        }
    }

    [Fact]
    public void A_nan_in_a_group_leaves_its_neighbours_converted_exactly()
    {
        var floats = Enumerable.Range(0, 37).Select(i => i * 0.37f - 3).ToArray();
        floats[3] = float.NaN;
        floats[20] = BitConverter.UInt32BitsToSingle(0xFFC01234);
        var halves = new Half[floats.Length];
        HalfConversion.ToHalf(floats, halves);
        Assert.Equal(floats.Select(f => BitConverter.HalfToUInt16Bits((Half)f)), halves.Select(BitConverter.HalfToUInt16Bits));

        var back = new float[halves.Length];
        HalfConversion.ToSingle(halves, back);
        Assert.Equal(halves.Select(h => BitsOf((float)h)), back.Select(BitsOf));
        Assert.True(float.IsNaN(back[3]) && float.IsNaN(back[20]));
    }

    [Theory]
    [InlineData(0.3)]
    [InlineData(0.5)]
    [InlineData(1.7)]
    public void Vector_weighted_sum_and_add_difference_equal_the_scalar_formulas(double m)
    {
        var random = new Random(11);
        const int n = 1003;
        float[] a = new float[n], b = new float[n], c = new float[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = (float)(random.NextDouble() * 2 - 1);
            b[i] = (float)(random.NextDouble() * 2 - 1) * 1e-3f;
            c[i] = (float)random.NextDouble() * 1e5f;
        }
        var sum = a.ToArray();
        TensorMath.WeightedSum(sum, b, m);
        Assert.Equal(a.Select((x, i) => BitsOf((float)(1 - m) * x + (float)m * b[i])), sum.Select(BitsOf));

        var difference = a.ToArray();
        TensorMath.AddDifference(difference, b, c, m);
        Assert.Equal(a.Select((x, i) => BitsOf(x + (float)m * (b[i] - c[i]))), difference.Select(BitsOf));
    }

    [Fact]
    public void Merging_fp16_tensors_in_chunks_equals_the_element_wise_formula()
    {
        var random = new Random(3);
        int n = (1 << 16) * 3 + 11; // several parallel chunks and a ragged end
        var ha = new Half[n];
        var hb = new Half[n];
        for (int i = 0; i < n; i++)
        {
            ha[i] = (Half)(float)(random.NextDouble() * 8 - 4);
            hb[i] = BitConverter.UInt16BitsToHalf((ushort)random.Next(0, 0x7C00)); // includes subnormals
        }
        var a = MemoryMarshal.AsBytes(ha.AsSpan()).ToArray();
        var b = MemoryMarshal.AsBytes(hb.AsSpan()).ToArray();
        var output = new byte[n * 2];
        TensorMath.Merge(MergeMode.WeightedSum, 0.35, a, TensorDType.F16, b, TensorDType.F16, default, TensorDType.F32, TensorDType.F16, output);
        var merged = MemoryMarshal.Cast<byte, ushort>(output);
        for (int i = 0; i < n; i++)
        {
            var expected = (Half)((float)(1 - 0.35) * (float)ha[i] + (float)0.35 * (float)hb[i]);
            Assert.True(BitConverter.HalfToUInt16Bits(expected) == merged[i], $"element {i}");
        }
    }
}
