namespace SharpDiffusion.Engine.ControlNet;

/// <summary>
/// The OpenCV 4.x morphology and thresholding that sd-webui-controlnet's control-map resize calls, for 8-bit images:
/// <c>cv2.erode</c>/<c>cv2.dilate</c> (one iteration, anchor at the kernel's centre, the default constant border,
/// which never wins: 255 for erode, 0 for dilate), <c>MORPH_HITMISS</c> and the Otsu threshold.
/// </summary>
public static class OpenCvMorphology
{
    /// <summary>Per channel, the minimum over the kernel's non-zero cells (pixels outside the image do not count).</summary>
    public static byte[] Erode(byte[] src, int width, int height, int channels, bool[,] kernel) =>
        Morph(src, width, height, channels, kernel, erode: true);

    /// <summary>Per channel, the maximum over the kernel's non-zero cells (pixels outside the image do not count).</summary>
    public static byte[] Dilate(byte[] src, int width, int height, int channels, bool[,] kernel) =>
        Morph(src, width, height, channels, kernel, erode: false);

    private static byte[] Morph(byte[] src, int width, int height, int cn, bool[,] kernel, bool erode)
    {
        if (src.Length != (long)width * height * cn) throw new ArgumentException($"{src.Length} bytes do not make a {width}x{height} image of {cn} channels");
        var taps = Taps(kernel);
        var dst = new byte[src.Length];
        int identity = erode ? 255 : 0, saturated = erode ? 0 : 255;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                for (int c = 0; c < cn; c++)
                {
                    int value = identity;
                    foreach (var (dy, dx) in taps)
                    {
                        int sy = y + dy, sx = x + dx;
                        if ((uint)sy >= (uint)height || (uint)sx >= (uint)width) continue;
                        int v = src[(sy * width + sx) * cn + c];
                        value = erode ? Math.Min(value, v) : Math.Max(value, v);
                        if (value == saturated) break; // nothing can change it any more
                    }
                    dst[(y * width + x) * cn + c] = (byte)value;
                }
            }
        }
        return dst;
    }

    /// <summary>The kernel's non-zero cells as offsets from its centre (OpenCV's default anchor).</summary>
    private static (int Dy, int Dx)[] Taps(bool[,] kernel)
    {
        int kh = kernel.GetLength(0), kw = kernel.GetLength(1);
        var taps = new List<(int Dy, int Dx)>();
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++)
                if (kernel[i, j]) taps.Add((i - kh / 2, j - kw / 2));
        return taps.ToArray();
    }

    /// <summary>
    /// <c>cv2.morphologyEx(x, MORPH_HITMISS, kernel)</c> of a one-channel image: the erosion by the kernel's 1 cells
    /// AND the erosion of the complement by its −1 cells (an erosion by no cells is all 255); 0 cells are ignored.
    /// </summary>
    public static byte[] HitOrMiss(byte[] src, int width, int height, int[,] kernel)
    {
        if (src.Length != (long)width * height) throw new ArgumentException($"{src.Length} bytes do not make a {width}x{height} one-channel image");
        int kh = kernel.GetLength(0), kw = kernel.GetLength(1);
        var hit = new bool[kh, kw];
        var miss = new bool[kh, kw];
        for (int i = 0; i < kh; i++)
        {
            for (int j = 0; j < kw; j++)
            {
                hit[i, j] = kernel[i, j] == 1;
                miss[i, j] = kernel[i, j] == -1;
            }
        }
        var hitTaps = Taps(hit);
        var missTaps = Taps(miss);
        if (hitTaps.Length == 0 && missTaps.Length == 0) return (byte[])src.Clone(); // OpenCV copies the source for an all-zero kernel
        // One pass: min(src) over the hit cells AND min(255 − src) over the miss cells (each 255 without cells, and
        // cells outside the image ignored, as erode's default border); a minimum stops at 0, which nothing lowers.
        var dst = new byte[src.Length];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int hitMin = 255, missMin = 255;
                foreach (var (dy, dx) in hitTaps)
                {
                    int sy = y + dy, sx = x + dx;
                    if ((uint)sy >= (uint)height || (uint)sx >= (uint)width) continue;
                    hitMin = Math.Min(hitMin, src[sy * width + sx]);
                    if (hitMin == 0) break;
                }
                if (hitMin == 0) continue;
                foreach (var (dy, dx) in missTaps)
                {
                    int sy = y + dy, sx = x + dx;
                    if ((uint)sy >= (uint)height || (uint)sx >= (uint)width) continue;
                    missMin = Math.Min(missMin, 255 - src[sy * width + sx]);
                    if (missMin == 0) break;
                }
                dst[y * width + x] = (byte)(hitMin & missMin);
            }
        }
        return dst;
    }

    /// <summary>
    /// OpenCV's getThreshVal_Otsu_8u: the first level with the largest between-class variance over the histogram
    /// (doubles; levels where either class holds under FLT_EPSILON are skipped, OpenCV's running mean included).
    /// </summary>
    public static int OtsuThreshold(byte[] gray)
    {
        if (gray.Length == 0) throw new ArgumentException("an empty image has no Otsu threshold");
        var histogram = new int[256];
        foreach (var v in gray) histogram[v]++;
        const double FltEpsilon = 1.1920928955078125e-07;
        double mu = 0, scale = 1.0 / gray.Length;
        for (int i = 0; i < 256; i++) mu += i * (double)histogram[i];
        mu *= scale;
        double mu1 = 0, q1 = 0, maxSigma = 0;
        int maxVal = 0;
        for (int i = 0; i < 256; i++)
        {
            double pi = histogram[i] * scale;
            mu1 *= q1;
            q1 += pi;
            double q2 = 1.0 - q1;
            if (Math.Min(q1, q2) < FltEpsilon || Math.Max(q1, q2) > 1.0 - FltEpsilon) continue;
            mu1 = (mu1 + i * pi) / q1;
            double mu2 = (mu - q1 * mu1) / q2;
            double sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
            if (sigma > maxSigma)
            {
                maxSigma = sigma;
                maxVal = i;
            }
        }
        return maxVal;
    }

    /// <summary><c>cv2.threshold(x, 0, 255, THRESH_BINARY + THRESH_OTSU)</c>: 255 above the Otsu level, else 0.</summary>
    public static byte[] OtsuBinary(byte[] gray)
    {
        int threshold = OtsuThreshold(gray);
        return gray.Select(v => v > threshold ? (byte)255 : (byte)0).ToArray();
    }
}
