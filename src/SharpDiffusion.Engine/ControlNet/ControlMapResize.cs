using SharpDiffusion.Engine.Upscaling;

namespace SharpDiffusion.Engine.ControlNet;

/// <summary>sd-webui-controlnet's resize modes for a control map of another shape than the image.</summary>
public enum ControlResizeMode
{
    /// <summary>"Just Resize": stretched to the size.</summary>
    JustResize,

    /// <summary>"Crop and Resize" (the extension's default): scaled to cover the size, centred, the excess cut off.</summary>
    CropAndResize,

    /// <summary>"Resize and Fill": scaled to fit inside, centred, the rest the median colour of the map's border.</summary>
    ResizeAndFill,
}

/// <summary>
/// sd-webui-controlnet's control-map resize (scripts/controlnet.py <c>detectmap_proc</c> with lvmin's
/// <c>high_quality_resize</c>, scripts/lvminthin.py), on 8-bit RGB maps, with OpenCV's own arithmetic
/// (<see cref="OpenCvResize"/>, <see cref="OpenCvMorphology"/>): maps of 3 to 199 colours (segmentation) are resized
/// nearest; others by area when the map gets fewer pixels, else cubic; a two-colour black-and-white map is made one
/// channel again, a one-pixel-edge map (canny, lineart) then non-maximum suppressed, Otsu-thresholded and thinned
/// (pruned when it grew), any other binary map Otsu-thresholded.
/// </summary>
public static class ControlMapResize
{
    /// <summary>The extension's names, as its infotext writes them ("Resize Mode: Crop and Resize").</summary>
    public static string InfotextName(ControlResizeMode mode) => mode switch
    {
        ControlResizeMode.JustResize => "Just Resize",
        ControlResizeMode.CropAndResize => "Crop and Resize",
        ControlResizeMode.ResizeAndFill => "Resize and Fill",
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown resize mode"),
    };

    /// <summary>The mode from the extension's name or the command line's (just-resize, crop-and-resize, resize-and-fill).</summary>
    public static ControlResizeMode Parse(string text) => text.Trim().ToLowerInvariant().Replace(' ', '-') switch
    {
        "just-resize" or "0" => ControlResizeMode.JustResize,
        "crop-and-resize" or "1" => ControlResizeMode.CropAndResize,
        "resize-and-fill" or "2" => ControlResizeMode.ResizeAndFill,
        _ => throw new ArgumentException($"unknown ControlNet resize mode '{text}': just-resize, crop-and-resize or resize-and-fill"),
    };

    /// <summary>detectmap_proc: the map at <paramref name="width"/> x <paramref name="height"/> (a map of that size is returned as is).</summary>
    public static RgbImage Apply(RgbImage map, int width, int height, ControlResizeMode mode)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"control map size {width}x{height} must be positive");
        if (mode == ControlResizeMode.JustResize) return HighQualityResize(map, width, height);

        double oldW = map.Width, oldH = map.Height;
        double k0 = height / oldH, k1 = width / oldW;
        // safeint = int(np.round(x)): half to even.
        static int SafeInt(double x) => (int)Math.Round(x, MidpointRounding.ToEven);
        if (mode == ControlResizeMode.ResizeAndFill)
        {
            double k = Math.Min(k0, k1);
            var border = BorderMedian(map);
            var resized = HighQualityResize(map, SafeInt(oldW * k), SafeInt(oldH * k));
            var canvas = new RgbImage(width, height);
            for (int i = 0; i < width * height; i++) (canvas.Pixels[i * 3], canvas.Pixels[i * 3 + 1], canvas.Pixels[i * 3 + 2]) = (border[0], border[1], border[2]);
            int padH = Math.Max(0, (height - resized.Height) / 2), padW = Math.Max(0, (width - resized.Width) / 2);
            for (int y = 0; y < resized.Height && padH + y < height; y++)
                Array.Copy(resized.Pixels, y * resized.Width * 3, canvas.Pixels, ((padH + y) * width + padW) * 3, Math.Min(resized.Width, width - padW) * 3);
            return canvas;
        }
        else
        {
            double k = Math.Max(k0, k1);
            var resized = HighQualityResize(map, SafeInt(oldW * k), SafeInt(oldH * k));
            if (resized.Width < width || resized.Height < height)
                throw new InvalidOperationException($"crop and resize made {resized.Width}x{resized.Height}, smaller than {width}x{height}");
            int padH = (resized.Height - height) / 2, padW = (resized.Width - width) / 2;
            return resized.Crop(padW, padH, width, height);
        }
    }

    /// <summary>
    /// The per-channel median of the first and last rows and columns (corners counted twice; an even count, so the
    /// mean of the two middle values, truncated to 8 bits as numpy's <c>astype(uint8)</c>).
    /// </summary>
    internal static byte[] BorderMedian(RgbImage map)
    {
        int w = map.Width, h = map.Height;
        var result = new byte[3];
        var values = new List<int>(2 * (w + h));
        for (int c = 0; c < 3; c++)
        {
            values.Clear();
            for (int x = 0; x < w; x++) values.Add(map.Pixels[x * 3 + c]);
            for (int x = 0; x < w; x++) values.Add(map.Pixels[((h - 1) * w + x) * 3 + c]);
            for (int y = 0; y < h; y++) values.Add(map.Pixels[y * w * 3 + c]);
            for (int y = 0; y < h; y++) values.Add(map.Pixels[(y * w + w - 1) * 3 + c]);
            values.Sort();
            int n = values.Count;
            result[c] = (byte)(n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2);
        }
        return result;
    }

    /// <summary>high_quality_resize: the whole map to <paramref name="width"/> x <paramref name="height"/> (no crop).</summary>
    public static RgbImage HighQualityResize(RgbImage x, int width, int height)
    {
        if (x.Width == width && x.Height == height) return x;
        if (width <= 0 || height <= 0) throw new ArgumentException($"cannot resize a control map to {width}x{height}");
        long oldArea = (long)x.Width * x.Height, newArea = (long)width * height;
        bool smaller = newArea < oldArea, bigger = newArea > oldArea;
        int colours = CountColours(x.Pixels, limit: 200);
        bool binary = false, onePixelEdge = false;
        if (colours == 2)
        {
            binary = x.Pixels.Min() < 16 && x.Pixels.Max() > 240;
            if (binary)
            {
                var ones = Ones(3);
                var opened = OpenCvMorphology.Dilate(OpenCvMorphology.Erode(x.Pixels, x.Width, x.Height, 3, ones), x.Width, x.Height, 3, ones);
                int thinCount = 0, edgeCount = 0;
                for (int i = 0; i < x.Pixels.Length; i++)
                {
                    if (opened[i] < x.Pixels[i]) thinCount++;
                    if (x.Pixels[i] > 127) edgeCount++;
                }
                onePixelEdge = thinCount * 2 > edgeCount;
            }
        }
        var interpolation = colours is > 2 and < 200 ? OpenCvInterpolation.Nearest
            : smaller ? OpenCvInterpolation.Area
            : OpenCvInterpolation.Cubic; // the extension: "Must be CUBIC because we now use nms. NEVER CHANGE THIS"
        var y = OpenCvResize.Resize(x.Pixels, x.Width, x.Height, 3, width, height, interpolation);
        if (!binary) return new RgbImage(width, height, y);

        // np.mean over the channels in float32, truncated: an exact (r + g + b) / 3 rounded down.
        var gray = new byte[width * height];
        for (int i = 0; i < gray.Length; i++) gray[i] = (byte)((y[i * 3] + y[i * 3 + 1] + y[i * 3 + 2]) / 3);
        if (onePixelEdge)
        {
            gray = OpenCvMorphology.OtsuBinary(NakeNms(gray, width, height));
            gray = LvminThin(gray, width, height, prunings: bigger);
        }
        else
        {
            gray = OpenCvMorphology.OtsuBinary(gray);
        }
        var rgb = new byte[gray.Length * 3];
        for (int i = 0; i < gray.Length; i++) rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = gray[i];
        return new RgbImage(width, height, rgb);
    }

    /// <summary>Distinct RGB triples (the extension's get_unique_axis0), counted up to <paramref name="limit"/>.</summary>
    internal static int CountColours(byte[] rgb, int limit)
    {
        var seen = new HashSet<int>();
        for (int i = 0; i < rgb.Length && seen.Count < limit; i += 3) seen.Add(rgb[i] << 16 | rgb[i + 1] << 8 | rgb[i + 2]);
        return seen.Count;
    }

    private static bool[,] Ones(int size)
    {
        var kernel = new bool[size, size];
        for (int i = 0; i < size; i++)
            for (int j = 0; j < size; j++) kernel[i, j] = true;
        return kernel;
    }

    private static readonly bool[][,] NmsLines =
    [
        new[,] { { false, false, false }, { true, true, true }, { false, false, false } },
        new[,] { { false, true, false }, { false, true, false }, { false, true, false } },
        new[,] { { true, false, false }, { false, true, false }, { false, false, true } },
        new[,] { { false, false, true }, { false, true, false }, { true, false, false } },
    ];

    /// <summary>lvmin's nake_nms: a pixel is kept where it is the maximum along any of the four 3-pixel lines through it.</summary>
    public static byte[] NakeNms(byte[] gray, int width, int height)
    {
        var y = new byte[gray.Length];
        foreach (var line in NmsLines)
        {
            var dilated = OpenCvMorphology.Dilate(gray, width, height, 1, line);
            for (int i = 0; i < gray.Length; i++)
                if (dilated[i] == gray[i]) y[i] = gray[i];
        }
        return y;
    }

    private static readonly int[][,] ThinningKernels = Rotations(
        new[,] { { -1, -1, -1 }, { 0, 1, 0 }, { 1, 1, 1 } },
        new[,] { { 0, -1, -1 }, { 1, 1, -1 }, { 0, 1, 0 } });

    private static readonly int[][,] PruningKernels = Rotations(
        new[,] { { -1, -1, -1 }, { -1, 1, -1 }, { 0, 0, -1 } },
        new[,] { { -1, -1, -1 }, { -1, 1, -1 }, { -1, 0, 0 } });

    /// <summary>The extension's kernel lists: both kernels unrotated, then both np.rot90'd once, twice, three times.</summary>
    private static int[][,] Rotations(params int[][,] raw)
    {
        var list = new List<int[,]>();
        for (int turns = 0; turns < 4; turns++)
        {
            foreach (var kernel in raw)
            {
                var k = kernel;
                for (int t = 0; t < turns; t++) k = Rot90(k);
                list.Add(k);
            }
        }
        return list.ToArray();
    }

    /// <summary>np.rot90(m) (counter-clockwise): <c>r[i, j] = m[j, n − 1 − i]</c>.</summary>
    private static int[,] Rot90(int[,] m)
    {
        int n = m.GetLength(0);
        var r = new int[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) r[i, j] = m[j, n - 1 - i];
        return r;
    }

    /// <summary>
    /// lvmin_thin: up to 32 passes of the 8 thinning hit-or-miss kernels (each pass removes, kernel after kernel,
    /// the pixels each one matches) until a pass removes nothing, then one pass of the 8 pruning kernels when asked.
    /// </summary>
    public static byte[] LvminThin(byte[] gray, int width, int height, bool prunings)
    {
        var y = (byte[])gray.Clone();
        for (int i = 0; i < 32; i++)
        {
            if (ThinOnce(y, width, height, ThinningKernels)) break;
        }
        if (prunings) ThinOnce(y, width, height, PruningKernels);
        return y;
    }

    /// <summary>thin_one_time, in place; true when no kernel matched anything.</summary>
    private static bool ThinOnce(byte[] y, int width, int height, int[][,] kernels)
    {
        bool done = true;
        foreach (var kernel in kernels)
        {
            var matches = OpenCvMorphology.HitOrMiss(y, width, height, kernel);
            for (int i = 0; i < y.Length; i++)
            {
                if (matches[i] <= 127) continue;
                y[i] = 0;
                done = false;
            }
        }
        return done;
    }
}
