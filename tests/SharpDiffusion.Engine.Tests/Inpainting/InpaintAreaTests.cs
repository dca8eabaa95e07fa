using SharpDiffusion.Engine.Inpainting;

namespace SharpDiffusion.Engine.Tests.Inpainting;

/// <summary>
/// "Only masked" geometry: A1111's get_crop_region_v2 and expand_crop_region (modules/masking.py), cases worked out
/// by hand from their formulas.
/// </summary>
public class InpaintAreaTests
{
    private static byte[] MaskWithBox(int width, int height, int x1, int y1, int x2, int y2)
    {
        var mask = new byte[width * height];
        for (int y = y1; y < y2; y++)
            for (int x = x1; x < x2; x++) mask[y * width + x] = 1; // any non-zero value counts
        return mask;
    }

    [Fact]
    public void MaskBoundsArePillowsBoundingBoxPaddedAndClipped()
    {
        var mask = MaskWithBox(100, 80, 10, 20, 30, 25);
        Assert.Equal(new CropRegion(10, 20, 30, 25), InpaintArea.MaskBounds(mask, 100, 80, 0));
        Assert.Equal(new CropRegion(0, 8, 42, 37), InpaintArea.MaskBounds(mask, 100, 80, 12));
        Assert.Equal(new CropRegion(0, 0, 100, 80), InpaintArea.MaskBounds(mask, 100, 80, 500));
        Assert.Null(InpaintArea.MaskBounds(new byte[100 * 80], 100, 80, 32));
    }

    [Fact]
    public void ExpandsTheShortSideToTheProcessingRatio()
    {
        // 128x32 region for a 512x512 job (A1111's docstring example): height grows by 96, 48 each side.
        Assert.Equal(new CropRegion(100, 52, 228, 180), InpaintArea.ExpandToAspect(new CropRegion(100, 100, 228, 132), 512, 512, 512, 512));
        // Tall 20x50 region, 3:2 job: desired width 75, diff int(75 - 20) = 55 -> 27 left, 28 right.
        Assert.Equal(new CropRegion(13, 10, 88, 60), InpaintArea.ExpandToAspect(new CropRegion(40, 10, 60, 60), 96, 64, 200, 100));
        // Odd diff: 10x11 region, 1:1 -> width grows by int(11 - 10) = 1: 0 left, 1 right.
        Assert.Equal(new CropRegion(5, 5, 16, 16), InpaintArea.ExpandToAspect(new CropRegion(5, 5, 15, 16), 64, 64, 64, 64));
    }

    [Fact]
    public void ShiftsBackInsideTheImageAndClipsWhenItCannotFit()
    {
        // Near the bottom edge: 40x10 at y 85..95 of 100 rows, 1:1 -> y 70..110, shifted up by 10 -> 60..100.
        Assert.Equal(new CropRegion(10, 60, 50, 100), InpaintArea.ExpandToAspect(new CropRegion(10, 85, 50, 95), 64, 64, 100, 100));
        // Near the left edge: 10x40 at x 2..12, 1:1 -> x -13..27, shifted right by 13 -> 0..40.
        Assert.Equal(new CropRegion(0, 30, 40, 70), InpaintArea.ExpandToAspect(new CropRegion(2, 30, 12, 70), 64, 64, 100, 100));
        // Taller than the image allows: 90x10 in a 100x30 image, 1:1 -> y -30..60, shifted up to -60..30, down to 0..90, clipped to 30.
        Assert.Equal(new CropRegion(5, 0, 95, 30), InpaintArea.ExpandToAspect(new CropRegion(5, 10, 95, 20), 64, 64, 100, 30));
    }
}
