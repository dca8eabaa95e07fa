namespace SharpDiffusion.Engine.Inpainting;

/// <summary>
/// OpenCV's <c>cv2.GaussianBlur</c> on 8-bit single-channel images along one axis, bit for bit: the 8-bit path uses a
/// fixed-point kernel (8 fraction bits) and computes <c>(Σ K[j]·in[i + j − r] + 128) >> 8</c>, borders mirrored
/// without repeating the edge (BORDER_REFLECT_101). A1111 blurs the inpainting mask with
/// <c>GaussianBlur(mask, (k, 1), blur)</c> then <c>GaussianBlur(., (1, k), blur)</c>, <c>k = 2·int(2.5·blur + 0.5) + 1</c>.
/// </summary>
public static class OpenCvGaussianBlur
{
    private const int FractionBits = 8;

    /// <summary>A1111's kernel size for a mask blur: 2·int(2.5·blur + 0.5) + 1.</summary>
    public static int KernelSize(double blur) => 2 * (int)(2.5 * blur + 0.5) + 1;

    /// <summary>
    /// getGaussianKernelBitExact + getGaussianKernelFixedPoint_ED: weights exp(−x²/(2σ²)) normalised, then the
    /// first half rounded to 1/256 with the rounding error carried to the next tap (round half to even), mirrored,
    /// and the centre taking what makes the sum exactly 256.
    /// </summary>
    public static int[] FixedPointKernel(int size, double sigma)
    {
        if (size <= 0 || size % 2 == 0) throw new ArgumentException($"Gaussian kernel size {size} must be odd and positive");
        if (!(sigma > 0)) sigma = size * 0.15 + 0.35; // OpenCV: σ = 0.3·((n − 1)·0.5 − 1) + 0.8
        int half = (size - 1) / 2;
        var values = new double[half + 1];
        double scale2 = -0.125 / (sigma * sigma); // x runs over even numbers 2·(i − half)
        double sum = 0;
        for (int i = 0, x = 1 - size; i < half; i++, x += 2)
        {
            values[i] = Math.Exp(x * x * scale2);
            sum += values[i];
        }
        sum = sum * 2 + 1;
        values[half] = 1;
        double inverse = 1 / sum;
        var kernel = new int[size];
        double error = 0;
        long total = 0;
        double multiplier = 1 << FractionBits;
        for (int i = 0; i < half; i++)
        {
            double adjusted = values[i] * inverse * multiplier + error;
            long v = (long)Math.Round(adjusted, MidpointRounding.ToEven);
            error = adjusted - v;
            kernel[i] = kernel[size - 1 - i] = (int)v;
            total += v;
        }
        kernel[half] = (int)((1 << FractionBits) - 2 * total);
        return kernel;
    }

    /// <summary>One 1-D pass of <c>cv2.GaussianBlur</c> over an 8-bit image (row-major, one byte per pixel).</summary>
    public static byte[] Blur(byte[] image, int width, int height, int kernelSize, double sigma, bool horizontal)
    {
        if (image.Length != width * height) throw new ArgumentException($"{image.Length} bytes for a {width}x{height} mask");
        if (kernelSize == 1) return (byte[])image.Clone();
        var kernel = FixedPointKernel(kernelSize, sigma);
        int radius = kernelSize / 2;
        int length = horizontal ? width : height;
        var output = new byte[image.Length];
        for (int line = 0; line < (horizontal ? height : width); line++)
        {
            for (int i = 0; i < length; i++)
            {
                int sum = 0;
                for (int j = 0; j < kernelSize; j++)
                {
                    int p = Reflect101(i + j - radius, length);
                    sum += kernel[j] * image[horizontal ? line * width + p : p * width + line];
                }
                output[horizontal ? line * width + i : i * width + line] = (byte)Math.Min(255, (sum + (1 << (FractionBits - 1))) >> FractionBits);
            }
        }
        return output;
    }

    /// <summary>BORDER_REFLECT_101: … c b | a b c … | b a … (a one-pixel line stays itself).</summary>
    private static int Reflect101(int p, int length)
    {
        if (length == 1) return 0;
        while (p < 0 || p >= length) p = p < 0 ? -p : 2 * length - 2 - p;
        return p;
    }
}
