using System.Buffers.Binary;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Formats;

public class DTypeConversionTests
{
    private static byte[] U16(params ushort[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), values[i]);
        return bytes;
    }

    private static ushort[] ReadU16(byte[] bytes)
    {
        var values = new ushort[bytes.Length / 2];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(i * 2));
        return values;
    }

    [Fact]
    public void HalfBitPatterns()
    {
        var f = DTypeConversion.ToSingle(U16(0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0400, 0x7C00, 0xFC00, 0x8000, 0x3555), TensorDType.F16);
        Assert.Equal([1f, -2f, 65504f, MathF.Pow(2, -24), MathF.Pow(2, -14), float.PositiveInfinity, float.NegativeInfinity, -0f, 0.33325195f], f);
        Assert.True(float.IsNegative(f[7]));
        Assert.True(float.IsNaN(DTypeConversion.ToSingle(U16(0x7E00), TensorDType.F16)[0]));
    }

    [Fact]
    public void BFloat16BitPatterns()
    {
        var f = DTypeConversion.ToSingle(U16(0x3F80, 0xC049, 0x7F80, 0x0001, 0x4780), TensorDType.BF16);
        Assert.Equal([1f, -3.140625f, float.PositiveInfinity, BitConverter.UInt32BitsToSingle(0x00010000), 65536f], f);
    }

    [Theory]
    [InlineData(0x3F800000u, (ushort)0x3F80)] // exact
    [InlineData(0x3F808000u, (ushort)0x3F80)] // tie, kept bit even: stays
    [InlineData(0x3F818000u, (ushort)0x3F82)] // tie, kept bit odd: rounds up to even
    [InlineData(0x3F808001u, (ushort)0x3F81)] // above the tie: up
    [InlineData(0x3F807FFFu, (ushort)0x3F80)] // below the tie: down
    [InlineData(0xC0490FDBu, (ushort)0xC049)] // -pi
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)] // float max rounds to infinity, as in torch
    [InlineData(0xFF800000u, (ushort)0xFF80)] // -inf
    [InlineData(0x80000000u, (ushort)0x8000)] // -0
    [InlineData(0x7FC00001u, (ushort)0x7FC0)] // NaN payloads become the canonical NaN
    [InlineData(0xFFFFFFFFu, (ushort)0x7FC0)]
    public void SingleToBFloat16RoundsToNearestEven(uint floatBits, ushort expected)
    {
        Assert.Equal(expected, DTypeConversion.SingleToBFloat16(BitConverter.UInt32BitsToSingle(floatBits)));
        var bytes = DTypeConversion.FromSingle([BitConverter.UInt32BitsToSingle(floatBits)], TensorDType.BF16);
        Assert.Equal([expected], ReadU16(bytes));
    }

    [Fact]
    public void SingleToHalfRoundsToNearestEven()
    {
        float[] values =
        [
            1f,
            1f + MathF.Pow(2, -10),      // exactly representable: 0x3C01
            1f + MathF.Pow(2, -11),      // tie between 0x3C00 and 0x3C01: even 0x3C00
            1f + 3 * MathF.Pow(2, -11),  // tie between 0x3C01 and 0x3C02: even 0x3C02
            1f + MathF.Pow(2, -11) + MathF.Pow(2, -20), // just above the tie: 0x3C01
            65504f,
            65519f,                      // below the overflow threshold: max half
            65520f,                      // the threshold itself rounds to infinity
            -1e9f,
            MathF.Pow(2, -25),           // half of the smallest subnormal: tie to 0
            MathF.Pow(2, -25) * 1.5f,    // rounds up to the smallest subnormal
            0.1f,
        ];
        var bits = ReadU16(DTypeConversion.FromSingle(values, TensorDType.F16));
        Assert.Equal(new ushort[] { 0x3C00, 0x3C01, 0x3C00, 0x3C02, 0x3C01, 0x7BFF, 0x7BFF, 0x7C00, 0xFC00, 0x0000, 0x0001, 0x2E66 }, bits);
    }

    [Fact]
    public void HalfRoundTripIsExactForEveryFiniteHalf()
    {
        var all = new ushort[65536];
        for (int i = 0; i < all.Length; i++) all[i] = (ushort)i;
        var floats = DTypeConversion.ToSingle(U16(all), TensorDType.F16);
        var back = ReadU16(DTypeConversion.FromSingle(floats, TensorDType.F16));
        for (int i = 0; i < all.Length; i++)
        {
            bool nan = (i & 0x7C00) == 0x7C00 && (i & 0x03FF) != 0;
            if (!nan) Assert.Equal(all[i], back[i]);
            else Assert.True(float.IsNaN(floats[i]));
        }
    }

    [Fact]
    public void F32AndF64()
    {
        var f32 = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(f32, 0x40490FDB);
        BinaryPrimitives.WriteUInt32LittleEndian(f32.AsSpan(4), 0xFF800000);
        Assert.Equal([MathF.PI, float.NegativeInfinity], DTypeConversion.ToSingle(f32, TensorDType.F32));
        Assert.Equal(f32, DTypeConversion.FromSingle([MathF.PI, float.NegativeInfinity], TensorDType.F32));

        var f64 = new byte[16];
        BinaryPrimitives.WriteDoubleLittleEndian(f64, Math.PI);
        BinaryPrimitives.WriteDoubleLittleEndian(f64.AsSpan(8), 1e300);
        Assert.Equal([MathF.PI, float.PositiveInfinity], DTypeConversion.ToSingle(f64, TensorDType.F64));
        Assert.Equal(0.5, BinaryPrimitives.ReadDoubleLittleEndian(DTypeConversion.FromSingle([0.5f], TensorDType.F64)));
    }

    [Fact]
    public void Integers()
    {
        Assert.Equal([-1f, 127f, -128f], DTypeConversion.ToSingle([0xFF, 0x7F, 0x80], TensorDType.I8));
        Assert.Equal([255f, 127f, 128f], DTypeConversion.ToSingle([0xFF, 0x7F, 0x80], TensorDType.U8));
        Assert.Equal([0f, 1f, 1f], DTypeConversion.ToSingle([0, 1, 2], TensorDType.Bool));
        Assert.Equal([-32768f, 258f], DTypeConversion.ToSingle([0x00, 0x80, 0x02, 0x01], TensorDType.I16));
        Assert.Equal([-2f], DTypeConversion.ToSingle(BitConverter.GetBytes(-2), TensorDType.I32));
        Assert.Equal([16777216f], DTypeConversion.ToSingle(BitConverter.GetBytes(16777217L), TensorDType.I64)); // nearest float
        Assert.Equal([-1e12f], DTypeConversion.ToSingle(BitConverter.GetBytes(-1_000_000_000_000L), TensorDType.I64));
    }

    [Fact]
    public void Float8()
    {
        Assert.Equal([1f, 448f, -2f, MathF.Pow(2, -9)], DTypeConversion.ToSingle([0x38, 0x7E, 0xC0, 0x01], TensorDType.F8_E4M3));
        Assert.True(float.IsNaN(DTypeConversion.ToSingle([0x7F], TensorDType.F8_E4M3)[0]));
        Assert.Equal([1f, 57344f, float.PositiveInfinity, -0.5f], DTypeConversion.ToSingle([0x3C, 0x7B, 0x7C, 0xB8], TensorDType.F8_E5M2));
    }

    [Fact]
    public void LengthMismatchesAndUnsupportedTargets()
    {
        Assert.Throws<ArgumentException>(() => DTypeConversion.ToSingle(new byte[6], TensorDType.F32, new float[2]));
        Assert.Throws<ArgumentException>(() => DTypeConversion.ToSingle(new byte[5], TensorDType.F16));
        Assert.Throws<ArgumentException>(() => DTypeConversion.ToSingle(new byte[4], TensorDType.Quantized));
        Assert.Throws<ArgumentException>(() => DTypeConversion.FromSingle([1f], TensorDType.I8));
        Assert.Throws<ArgumentException>(() => DTypeConversion.FromSingle([1f, 2f], TensorDType.F16, new byte[2]));
    }
}
