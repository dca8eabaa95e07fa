namespace SharpDiffusion.Engine.Text.Conditioners;

/// <summary>SDXL's size inputs: original size (h, w), crop top-left (top, left), target size (h, w).</summary>
public sealed record ImageSizeConditioning(int OriginalHeight, int OriginalWidth, int CropTop, int CropLeft, int TargetHeight, int TargetWidth)
{
    /// <summary>What A1111 passes for an image of this size: (h, w), (0, 0), (h, w).</summary>
    public static ImageSizeConditioning ForImage(int height, int width) => new(height, width, 0, 0, height, width);
}
