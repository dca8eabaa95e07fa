using SharpDiffusion.Engine.Upscaling;

namespace SharpDiffusion.Engine.ControlNet;

/// <summary>
/// One ControlNet of a generation job (sd-webui-controlnet's "unit"): the model file, the preprocessed control map at
/// its own size, how it is fitted to the image (<see cref="ResizeMode"/>), its weight and guidance window (fractions
/// of the steps). The engine fits the map to the job's size and, for hires. fix, separately to the second pass's size
/// (the extension's <c>hr_hint</c>, made from the same map).
/// </summary>
/// <param name="ModelPath">A ControlNet file or diffusers folder.</param>
/// <param name="Hint">
/// The control map, float32 [3, HintHeight, HintWidth] row-major planes, values in [0, 1]. A map of the image's size
/// is used as is; one of another size must be 8-bit (every value k/255, as <see cref="FromMap"/> makes it), since the
/// extension's resize works on its uint8 map.
/// </param>
public sealed record ControlUnit(string ModelPath, float[] Hint, int HintWidth, int HintHeight)
{
    /// <summary>The preprocessor that made the map, as the extension names it ("none", "canny", "invert").</summary>
    public string Module { get; init; } = "none";

    public double Weight { get; init; } = 1.0;
    public double GuidanceStart { get; init; }
    public double GuidanceEnd { get; init; } = 1.0;

    /// <summary>canny's low and high thresholds (the extension's threshold_a / threshold_b), for the infotext.</summary>
    public int ThresholdA { get; init; } = ControlPreprocessors.DefaultCannyLow;
    public int ThresholdB { get; init; } = ControlPreprocessors.DefaultCannyHigh;

    /// <summary>How a map of another shape fits the image; the extension's default is "Crop and Resize".</summary>
    public ControlResizeMode ResizeMode { get; init; } = ControlResizeMode.CropAndResize;

    /// <summary>A unit for an 8-bit map (the extension's uint8 <c>detected_map</c>): the planes are its bytes / 255.</summary>
    public static ControlUnit FromMap(string modelPath, RgbImage map) => new(modelPath, Planes(map), map.Width, map.Height);

    /// <summary>
    /// The hint for a <paramref name="width"/> x <paramref name="height"/> image, [3, height, width] planes in [0, 1]
    /// (the extension's <c>detectmap_proc</c> then <c>get_pytorch_control</c>): the map itself at that size, else the
    /// map resized with <see cref="ResizeMode"/> (<see cref="ControlMapResize"/>).
    /// </summary>
    public float[] HintFor(int width, int height)
    {
        if (Hint.Length != 3 * HintWidth * HintHeight)
            throw new ArgumentException($"{ModelPath}: a {HintWidth}x{HintHeight} control map needs {3 * HintWidth * HintHeight} values, not {Hint.Length}");
        if (HintWidth == width && HintHeight == height) return Hint;
        return Planes(ControlMapResize.Apply(ToMap(), width, height, ResizeMode));
    }

    /// <summary>The 8-bit map the planes were made from; refuses values that are not k/255.</summary>
    public RgbImage ToMap()
    {
        int plane = HintWidth * HintHeight;
        var pixels = new byte[3 * plane];
        for (int c = 0; c < 3; c++)
        {
            for (int i = 0; i < plane; i++)
            {
                float v = Hint[c * plane + i];
                float level = MathF.Round(v * 255f);
                if (!(level >= 0 && level <= 255) || level / 255f != v)
                    throw new ArgumentException($"{ModelPath}: the {HintWidth}x{HintHeight} control map is not 8-bit (value {v}), so it cannot be resized to the image as the extension resizes its uint8 maps; give it at the image's size");
                pixels[i * 3 + c] = (byte)level;
            }
        }
        return new RgbImage(HintWidth, HintHeight, pixels);
    }

    /// <summary>RGB bytes / 255 as [3, H, W] float planes (the extension's <c>x.float() / 255</c>, HWC to CHW).</summary>
    private static float[] Planes(RgbImage map)
    {
        int plane = map.Width * map.Height;
        var values = new float[3 * plane];
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++) values[c * plane + i] = map.Pixels[i * 3 + c] / 255f;
        return values;
    }
}
