using SharpDiffusion.Engine.Upscaling;

namespace SharpDiffusion.Engine.ControlNet;

/// <summary>
/// The control-image preprocessors of sd-webui-controlnet that need no model, each at the extension's resolution:
/// <c>canny</c> (<c>resize_image_with_pad</c> to <see cref="DefaultProcessorResolution"/> on the short side, then
/// <c>cv2.Canny(img, low, high)</c> on the RGB image, A1111's defaults 100/200, the pad removed, the edge map repeated
/// to 3 channels) and <c>invert</c> (255 − v, at the image's own size); <c>none</c> uses the image as the map. The
/// map keeps that size: <see cref="ControlMapResize"/> fits it to the image (<see cref="ControlUnit.HintFor"/>).
/// </summary>
public static class ControlPreprocessors
{
    public const int DefaultCannyLow = 100;
    public const int DefaultCannyHigh = 200;

    /// <summary>The extension's "Preprocessor Resolution" default (Pixel Perfect off).</summary>
    public const int DefaultProcessorResolution = 512;

    public static RgbImage Apply(string name, RgbImage image, int cannyLow = DefaultCannyLow, int cannyHigh = DefaultCannyHigh,
        int resolution = DefaultProcessorResolution) => name switch
    {
        "none" => image,
        "canny" => CannyAtResolution(image, resolution, cannyLow, cannyHigh),
        "invert" => new RgbImage(image.Width, image.Height, image.Pixels.Select(v => (byte)(255 - v)).ToArray()),
        _ => throw new ArgumentException($"unknown ControlNet preprocessor '{name}' (none, canny, invert)"),
    };

    /// <summary>
    /// A unit from a control image as the extension makes one: the preprocessor at its resolution (canny's
    /// thresholds <paramref name="low"/> / <paramref name="high"/>), the map kept at its own size for the engine to fit.
    /// </summary>
    public static ControlUnit Unit(string modelPath, RgbImage image, string module, ControlResizeMode resizeMode,
        double weight = 1.0, double guidanceStart = 0.0, double guidanceEnd = 1.0, int low = DefaultCannyLow, int high = DefaultCannyHigh)
    {
        var map = Apply(module, image, low, high);
        return ControlUnit.FromMap(modelPath, map) with
        {
            Module = module,
            ResizeMode = resizeMode,
            Weight = weight,
            GuidanceStart = guidanceStart,
            GuidanceEnd = guidanceEnd,
            ThresholdA = low,
            ThresholdB = high,
        };
    }

    /// <summary>The extension's <c>canny</c>: Canny on the image resized with pad to the resolution, the pad removed.</summary>
    public static RgbImage CannyAtResolution(RgbImage image, int resolution, int low, int high)
    {
        var (padded, width, height) = ResizeWithPad(image, resolution);
        var edges = Canny(padded, low, high);
        var gray = new byte[width * height];
        for (int y = 0; y < height; y++) Array.Copy(edges, y * padded.Width, gray, y * width, width);
        return Gray3(gray, width, height);
    }

    /// <summary>
    /// The extension's <c>resize_image_with_pad</c>: scaled so that the short side is <paramref name="resolution"/>
    /// (<c>cv2.resize</c> cubic when that enlarges, else area; sides <c>round(side · k)</c>, half to even), then padded
    /// to multiples of 64 by repeating the last row and column. Returns the padded image and the size before the pad.
    /// </summary>
    public static (RgbImage Padded, int Width, int Height) ResizeWithPad(RgbImage image, int resolution)
    {
        if (resolution <= 0) throw new ArgumentException($"preprocessor resolution {resolution} must be positive");
        double k = (double)resolution / Math.Min(image.Height, image.Width);
        var interpolation = k > 1 ? OpenCvInterpolation.Cubic : OpenCvInterpolation.Area;
        int height = (int)Math.Round(image.Height * k, MidpointRounding.ToEven);
        int width = (int)Math.Round(image.Width * k, MidpointRounding.ToEven);
        var resized = OpenCvResize.Resize(image.Pixels, image.Width, image.Height, 3, width, height, interpolation);
        int paddedWidth = (width + 63) / 64 * 64, paddedHeight = (height + 63) / 64 * 64;
        var padded = new byte[paddedWidth * paddedHeight * 3];
        for (int y = 0; y < paddedHeight; y++)
        {
            int sy = Math.Min(y, height - 1);
            Array.Copy(resized, sy * width * 3, padded, y * paddedWidth * 3, width * 3);
            for (int x = width; x < paddedWidth; x++) Array.Copy(resized, (sy * width + width - 1) * 3, padded, (y * paddedWidth + x) * 3, 3);
        }
        return (new RgbImage(paddedWidth, paddedHeight, padded), width, height);
    }

    /// <summary>
    /// OpenCV's <c>Canny</c> (aperture 3, L1 gradient) on a 3-channel 8-bit image: 3x3 Sobel per channel (border
    /// replicated), per pixel the channel of largest |dx| + |dy| (the first on ties); non-maximum suppression along
    /// the gradient's octant with OpenCV's integer tan(22.5°) test (strict on one side, ≥ on the other as OpenCV);
    /// pixels above <paramref name="low"/> that survive are kept when 8-connected to one above
    /// <paramref name="high"/>. Returns 0/255 per pixel.
    /// </summary>
    public static byte[] Canny(RgbImage image, int low, int high)
    {
        if (low > high) (low, high) = (high, low); // OpenCV swaps them too
        int w = image.Width, h = image.Height;
        var mag = new int[(w + 2) * (h + 2)]; // zero border: neighbours outside the image have magnitude 0
        var gx = new int[w * h];
        var gy = new int[w * h];
        int P(int x, int y, int c) => image.Pixels[(Math.Clamp(y, 0, h - 1) * w + Math.Clamp(x, 0, w - 1)) * 3 + c];
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                int bestM = -1, bestX = 0, bestY = 0;
                for (int c = 0; c < 3; c++)
                {
                    int dx = (P(x + 1, y - 1, c) - P(x - 1, y - 1, c)) + 2 * (P(x + 1, y, c) - P(x - 1, y, c)) + (P(x + 1, y + 1, c) - P(x - 1, y + 1, c));
                    int dy = (P(x - 1, y + 1, c) - P(x - 1, y - 1, c)) + 2 * (P(x, y + 1, c) - P(x, y - 1, c)) + (P(x + 1, y + 1, c) - P(x + 1, y - 1, c));
                    int m = Math.Abs(dx) + Math.Abs(dy);
                    if (m > bestM) (bestM, bestX, bestY) = (m, dx, dy);
                }
                mag[(y + 1) * (w + 2) + x + 1] = bestM;
                gx[y * w + x] = bestX;
                gy[y * w + x] = bestY;
            }
        }

        const int Shift = 15;
        const int Tg22 = 13573; // (int)(tan(22.5°)·2^15 + 0.5)
        var state = new byte[w * h]; // 0 not an edge, 1 candidate, 2 edge
        var stack = new Stack<int>();
        int M(int x, int y) => mag[(y + 1) * (w + 2) + x + 1];
        for (int y = 0; y < h; y++)
        {
            for (int x = 0; x < w; x++)
            {
                int m = M(x, y);
                if (m <= low) continue;
                int xs = gx[y * w + x], ys = gy[y * w + x];
                int ax = Math.Abs(xs), ay = Math.Abs(ys) << Shift;
                int tg22x = ax * Tg22;
                bool maximum;
                if (ay < tg22x) maximum = m > M(x - 1, y) && m >= M(x + 1, y);
                else
                {
                    int tg67x = tg22x + (ax << (Shift + 1));
                    if (ay > tg67x) maximum = m > M(x, y - 1) && m >= M(x, y + 1);
                    else
                    {
                        int s = (xs ^ ys) < 0 ? -1 : 1;
                        maximum = m > M(x - s, y - 1) && m > M(x + s, y + 1);
                    }
                }
                if (!maximum) continue;
                state[y * w + x] = 1;
                if (m > high)
                {
                    state[y * w + x] = 2;
                    stack.Push(y * w + x);
                }
            }
        }
        while (stack.Count > 0)
        {
            int p = stack.Pop(), px = p % w, py = p / w;
            for (int dy = -1; dy <= 1; dy++)
            {
                for (int dx = -1; dx <= 1; dx++)
                {
                    int nx = px + dx, ny = py + dy;
                    if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
                    int q = ny * w + nx;
                    if (state[q] != 1) continue;
                    state[q] = 2;
                    stack.Push(q);
                }
            }
        }
        return state.Select(v => (byte)(v == 2 ? 255 : 0)).ToArray();
    }

    private static RgbImage Gray3(byte[] gray, int width, int height)
    {
        var pixels = new byte[gray.Length * 3];
        for (int i = 0; i < gray.Length; i++) pixels[i * 3] = pixels[i * 3 + 1] = pixels[i * 3 + 2] = gray[i];
        return new RgbImage(width, height, pixels);
    }
}
