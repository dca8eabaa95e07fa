namespace SharpDiffusion.Engine.Inpainting;

/// <summary>
/// Pillow's <c>ImageFilter.GaussianBlur(radius)</c> on 8-bit images (BoxBlur.c): three box-blur passes per direction
/// whose box radius comes from the Gaussian's variance (Gwosdek et al.: integer part plus a fractional weight on the
/// two far pixels), edges extended, 24-bit fixed point rounded to 8 bits after every pass; horizontal passes first.
/// A1111's "fill" masked content is built from these blurs.
/// </summary>
public static class PillowGaussianBlur
{
    private const int Passes = 3;

    /// <summary>Interleaved 8-bit pixels (<paramref name="channels"/> bytes each, row-major); radius 0 copies.</summary>
    public static byte[] Blur(byte[] pixels, int width, int height, int channels, float radius)
    {
        if (pixels.Length != width * height * channels) throw new ArgumentException($"{pixels.Length} bytes for a {width}x{height}x{channels} image");
        var result = (byte[])pixels.Clone();
        if (radius == 0) return result;
        float boxRadius = BoxRadius(radius);
        int pad = (int)boxRadius + 1;
        var line = new int[Math.Max(width, height) + 2 * pad];
        for (int pass = 0; pass < Passes; pass++)
            for (int y = 0; y < height; y++)
                for (int c = 0; c < channels; c++)
                    BlurLine(result, (y * width) * channels + c, channels, width, boxRadius, line);
        for (int pass = 0; pass < Passes; pass++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < channels; c++)
                    BlurLine(result, x * channels + c, width * channels, height, boxRadius, line);
        return result;
    }

    /// <summary>_gaussian_blur_radius: the box radius whose three passes have the Gaussian's variance (single precision, as Pillow).</summary>
    internal static float BoxRadius(float radius)
    {
        float sigma2 = radius * radius / Passes;
        float boxLength = (float)Math.Sqrt(12.0 * sigma2 + 1.0);
        float whole = (float)Math.Floor((boxLength - 1.0) / 2.0);
        float fraction = (2 * whole + 1) * (whole * (whole + 1) - 3 * sigma2);
        fraction /= 6 * (sigma2 - (whole + 1) * (whole + 1));
        return whole + fraction;
    }

    /// <summary>
    /// One pass over one line (ImagingLineBoxBlur): out[x] = (Σ_{|j|≤r} in[x+j]·ww + (in[x−r−1] + in[x+r+1])·fw + 2²³) >> 24,
    /// indices clamped to the line (the edge pixel repeats), ww = 2²⁴ / (2·radius + 1), fw the remainder split over the far pair.
    /// </summary>
    private static void BlurLine(byte[] data, int start, int stride, int length, float floatRadius, int[] line)
    {
        int radius = (int)floatRadius;
        uint ww = (uint)(16777216f / (floatRadius * 2 + 1));
        long fw = (16777216u - (uint)(radius * 2 + 1) * ww) / 2;
        // The line with radius + 1 copies of its edge pixels on either side: line[pad + i] = in[clamp(i)].
        int pad = radius + 1;
        for (int i = 0; i < length; i++) line[pad + i] = data[start + i * stride];
        for (int i = 0; i < pad; i++)
        {
            line[i] = line[pad];
            line[pad + length + i] = line[pad + length - 1];
        }
        long acc = 0;
        for (int j = -radius - 1; j <= radius - 1; j++) acc += line[pad + j];
        for (int x = 0; x < length; x++)
        {
            int far = line[pad + x - radius - 1];
            acc += line[pad + x + radius] - far;
            long bulk = acc * ww + (far + line[pad + x + radius + 1]) * fw;
            data[start + x * stride] = (byte)((bulk + (1 << 23)) >> 24);
        }
    }
}
