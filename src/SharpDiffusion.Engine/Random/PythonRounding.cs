using System.Numerics;

namespace SharpDiffusion.Engine.Random;

/// <summary>Python's <c>round(x, ndigits)</c> for doubles, which torchsde uses to snap Brownian-tree times to a grid.</summary>
public static class PythonRounding
{
    /// <summary>
    /// The double nearest to the exact binary value of <paramref name="x"/> rounded to <paramref name="digits"/>
    /// decimals, ties to even. .NET's <c>Math.Round(x, digits)</c> scales by 10^digits in floating point first and
    /// disagrees on values such as 123.4567885; this works on the exact mantissa and exponent instead.
    /// </summary>
    public static double Round(double x, int digits)
    {
        if (digits < 0 || digits > 15) throw new ArgumentOutOfRangeException(nameof(digits), digits, "digits must be in [0, 15]");
        if (double.IsNaN(x) || double.IsInfinity(x) || x == 0) return x;
        bool negative = x < 0;
        long bits = BitConverter.DoubleToInt64Bits(Math.Abs(x));
        int biasedExponent = (int)((bits >> 52) & 0x7FF);
        long fraction = bits & 0xFFFFFFFFFFFFFL;
        // |x| = mantissa · 2^exponent exactly.
        BigInteger mantissa = biasedExponent == 0 ? fraction : fraction | (1L << 52);
        int exponent = (biasedExponent == 0 ? 1 : biasedExponent) - 1075;
        BigInteger scale = BigInteger.Pow(10, digits);
        BigInteger scaled = mantissa * scale;
        BigInteger rounded;
        if (exponent >= 0)
        {
            rounded = scaled << exponent;
        }
        else
        {
            BigInteger quotient = scaled >> -exponent;
            BigInteger remainder = scaled - (quotient << -exponent);
            BigInteger half = BigInteger.One << (-exponent - 1);
            int comparison = remainder.CompareTo(half);
            rounded = comparison > 0 || (comparison == 0 && !quotient.IsEven) ? quotient + 1 : quotient;
        }
        // Both operands are exact doubles when the result fits 53 bits, so the division is correctly rounded.
        double result = rounded.GetBitLength() <= 53
            ? (double)rounded / (double)scale
            : double.Parse(rounded.ToString() + "E-" + digits, System.Globalization.CultureInfo.InvariantCulture);
        return negative ? -result : result;
    }
}
