namespace SharpDiffusion.Formats;

/// <summary>Decoding of the two 8-bit float formats safetensors stores (F8_E4M3 is the "fn" variant: no infinities).</summary>
public static class Float8
{
    public static float E4M3FnToSingle(byte b)
    {
        int sign = b >> 7, exp = (b >> 3) & 0xF, man = b & 0x7;
        if (exp == 0xF && man == 0x7) return float.NaN;
        float v = exp == 0 ? man / 8f * MathF.Pow(2, -6) : (1 + man / 8f) * MathF.Pow(2, exp - 7);
        return sign == 1 ? -v : v;
    }

    /// <summary>E5M2 is the upper byte of an IEEE half.</summary>
    public static float E5M2ToSingle(byte b) => (float)BitConverter.UInt16BitsToHalf((ushort)(b << 8));
}
