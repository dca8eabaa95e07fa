namespace SharpDiffusion.Engine.Upscaling;

/// <summary>Pillow's separable resampling filters (Resample.c).</summary>
public enum PillowFilter
{
    /// <summary>Cubic convolution, a = −0.5, support 2 (Pillow's default for RGB <c>resize</c>).</summary>
    Bicubic,

    /// <summary>sinc(x)·sinc(x/3), support 3 (A1111's final resize to the requested upscale size).</summary>
    Lanczos,
}

/// <summary>
/// Pillow's 8-bit <c>Image.resize</c> (Resample.c, 8 bits per channel): per output pixel the weights of the source
/// pixels under the filter (stretched by the scale when shrinking), normalised, turned into 22-bit fixed point and
/// summed with rounding; a horizontal pass (rounded to 8 bits), then a vertical pass. A pass whose size does not
/// change is skipped, as in Pillow.
/// </summary>
public static class PillowResize
{
    private const int PrecisionBits = 32 - 8 - 2;

    public static RgbImage Resize(RgbImage image, int width, int height, PillowFilter filter)
    {
        var pixels = Resize(image.Pixels, image.Width, image.Height, 3, width, height, filter);
        return new RgbImage(width, height, pixels);
    }

    /// <summary>Any interleaved 8-bit image (<paramref name="channels"/> bytes per pixel, row-major).</summary>
    public static byte[] Resize(byte[] pixels, int width, int height, int channels, int newWidth, int newHeight, PillowFilter filter)
    {
        return Resize(pixels, width, height, channels, newWidth, newHeight, filter, (0, 0, width, height));
    }

    /// <summary>
    /// <c>resize(size, filter, box=(x0, y0, x1, y1))</c>: the source region <paramref name="box"/> (which may be empty
    /// in one direction: A1111's "resize and fill" stretches an edge that way) mapped onto the new size.
    /// </summary>
    public static byte[] Resize(byte[] pixels, int width, int height, int channels, int newWidth, int newHeight, PillowFilter filter,
        (double X0, double Y0, double X1, double Y1) box)
    {
        if (newWidth <= 0 || newHeight <= 0) throw new ArgumentException($"resize to {newWidth}x{newHeight}: size must be positive");
        if (box.X0 < 0 || box.Y0 < 0 || box.X1 > width || box.Y1 > height || box.X1 < box.X0 || box.Y1 < box.Y0)
            throw new ArgumentException($"resize box ({box.X0}, {box.Y0}, {box.X1}, {box.Y1}) outside a {width}x{height} image");
        var current = pixels;
        int w = width;
        if (newWidth != width || box.X0 != 0 || box.X1 != width)
        {
            current = HorizontalPass(current, width, height, channels, newWidth, filter, box.X0, box.X1);
            w = newWidth;
        }
        if (newHeight != height || box.Y0 != 0 || box.Y1 != height)
            current = VerticalPass(current, w, height, channels, newHeight, filter, box.Y0, box.Y1);
        return ReferenceEquals(current, pixels) ? (byte[])pixels.Clone() : current;
    }

    private static byte[] HorizontalPass(byte[] input, int width, int height, int channels, int newWidth, PillowFilter filter, double in0, double in1)
    {
        var (bounds, weights, kernelSize) = Coefficients(width, newWidth, filter, in0, in1);
        var output = new byte[newWidth * height * channels];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < newWidth; x++)
            {
                int start = bounds[x * 2], count = bounds[x * 2 + 1];
                for (int c = 0; c < channels; c++)
                {
                    int sum = 1 << (PrecisionBits - 1);
                    for (int k = 0; k < count; k++) sum += input[(y * width + start + k) * channels + c] * weights[x * kernelSize + k];
                    output[(y * newWidth + x) * channels + c] = Clip8(sum);
                }
            }
        }
        return output;
    }

    private static byte[] VerticalPass(byte[] input, int width, int height, int channels, int newHeight, PillowFilter filter, double in0, double in1)
    {
        var (bounds, weights, kernelSize) = Coefficients(height, newHeight, filter, in0, in1);
        var output = new byte[width * newHeight * channels];
        for (int y = 0; y < newHeight; y++)
        {
            int start = bounds[y * 2], count = bounds[y * 2 + 1];
            for (int x = 0; x < width; x++)
            {
                for (int c = 0; c < channels; c++)
                {
                    int sum = 1 << (PrecisionBits - 1);
                    for (int k = 0; k < count; k++) sum += input[((start + k) * width + x) * channels + c] * weights[y * kernelSize + k];
                    output[(y * width + x) * channels + c] = Clip8(sum);
                }
            }
        }
        return output;
    }

    private static byte Clip8(int sum)
    {
        int v = sum >> PrecisionBits;
        return (byte)(v < 0 ? 0 : v > 255 ? 255 : v);
    }

    /// <summary>
    /// precompute_coeffs + normalize_coeffs_8bpc: for output pixel i, center = in0 + (i + 0.5)·scale, scale = (in1 − in0) / out, source pixels
    /// [int(center − support + 0.5), int(center + support + 0.5)) clipped to the input, weight of j =
    /// filter((j − center + 0.5) / filterscale), normalised to sum 1, then (int)(±0.5 + w·2²²).
    /// </summary>
    internal static (int[] Bounds, int[] Weights, int KernelSize) Coefficients(int inSize, int outSize, PillowFilter filter, double in0 = 0, double? in1 = null)
    {
        double support0 = filter == PillowFilter.Lanczos ? 3.0 : 2.0;
        double scale = ((in1 ?? inSize) - in0) / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = support0 * filterScale;
        int kernelSize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var weights = new int[outSize * kernelSize];
        var k = new double[kernelSize];
        double ss = 1.0 / filterScale;
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = in0 + (xx + 0.5) * scale;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            double total = 0;
            for (int x = 0; x < xmax; x++)
            {
                double w = Filter(filter, (x + xmin - center + 0.5) * ss);
                k[x] = w;
                total += w;
            }
            for (int x = 0; x < xmax; x++)
            {
                double w = total != 0 ? k[x] / total : k[x];
                weights[xx * kernelSize + x] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return (bounds, weights, kernelSize);
    }

    private static double Filter(PillowFilter filter, double x)
    {
        if (filter == PillowFilter.Lanczos) return x >= -3.0 && x < 3.0 ? Sinc(x) * Sinc(x / 3) : 0.0;
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    private static double Sinc(double x)
    {
        if (x == 0.0) return 1.0;
        x *= Math.PI;
        return Math.Sin(x) / x;
    }
}
