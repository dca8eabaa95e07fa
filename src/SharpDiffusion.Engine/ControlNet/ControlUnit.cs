namespace SharpDiffusion.Engine.ControlNet;

/// <summary>
/// One ControlNet of a generation job (sd-webui-controlnet's "unit"): the model file, the control map already
/// preprocessed and sized to the output image, its weight and guidance window (fractions of the steps).
/// </summary>
/// <param name="ModelPath">A ControlNet file or diffusers folder.</param>
/// <param name="Hint">The control map, float32 [3, HintHeight, HintWidth] row-major planes, values in [0, 1].</param>
public sealed record ControlUnit(string ModelPath, float[] Hint, int HintWidth, int HintHeight)
{
    /// <summary>The preprocessor that made the map, as the extension names it ("none", "canny", "invert").</summary>
    public string Module { get; init; } = "none";

    public double Weight { get; init; } = 1.0;
    public double GuidanceStart { get; init; }
    public double GuidanceEnd { get; init; } = 1.0;
}
