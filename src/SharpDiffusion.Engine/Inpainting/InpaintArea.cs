namespace SharpDiffusion.Engine.Inpainting;

/// <summary>A rectangle of an image, Pillow's box convention: columns X1..X2−1, rows Y1..Y2−1.</summary>
public readonly record struct CropRegion(int X1, int Y1, int X2, int Y2)
{
    public int Width => X2 - X1;
    public int Height => Y2 - Y1;
}

/// <summary>
/// A1111's "Inpaint area: Only masked" geometry (modules/masking.py): the masked pixels' bounding box plus padding,
/// widened to the processing size's aspect ratio; that part of the image is generated at the job size and pasted back.
/// </summary>
public static class InpaintArea
{
    /// <summary>
    /// <c>get_crop_region_v2</c>: Pillow's <c>getbbox()</c> of the non-zero mask pixels, grown by
    /// <paramref name="padding"/> on every side and clipped to the image; null for a blank mask.
    /// </summary>
    public static CropRegion? MaskBounds(byte[] mask, int width, int height, int padding)
    {
        if (mask.Length != width * height) throw new ArgumentException($"mask of {mask.Length} pixels for a {width}x{height} image");
        int x1 = width, y1 = height, x2 = 0, y2 = 0;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                if (mask[y * width + x] == 0) continue;
                x1 = Math.Min(x1, x);
                x2 = Math.Max(x2, x + 1);
                y1 = Math.Min(y1, y);
                y2 = Math.Max(y2, y + 1);
            }
        if (x2 == 0) return null;
        return new CropRegion(Math.Max(x1 - padding, 0), Math.Max(y1 - padding, 0), Math.Min(x2 + padding, width), Math.Min(y2 + padding, height));
    }

    /// <summary>
    /// <c>expand_crop_region</c>: the region grown (evenly, the odd pixel after) along its short side to the
    /// processing aspect ratio, shifted back inside the image where it overflows, and clipped at the far edge.
    /// </summary>
    public static CropRegion ExpandToAspect(CropRegion region, int processingWidth, int processingHeight, int imageWidth, int imageHeight)
    {
        var (x1, y1, x2, y2) = region;
        double regionRatio = (double)(x2 - x1) / (y2 - y1);
        double processingRatio = (double)processingWidth / processingHeight;
        if (regionRatio > processingRatio)
        {
            double desiredHeight = (x2 - x1) / processingRatio;
            int diff = (int)(desiredHeight - (y2 - y1));
            y1 -= diff / 2;
            y2 += diff - diff / 2;
            if (y2 >= imageHeight)
            {
                int over = y2 - imageHeight;
                y2 -= over;
                y1 -= over;
            }
            if (y1 < 0)
            {
                y2 -= y1;
                y1 = 0;
            }
            if (y2 >= imageHeight) y2 = imageHeight;
        }
        else
        {
            double desiredWidth = (y2 - y1) * processingRatio;
            int diff = (int)(desiredWidth - (x2 - x1));
            x1 -= diff / 2;
            x2 += diff - diff / 2;
            if (x2 >= imageWidth)
            {
                int over = x2 - imageWidth;
                x2 -= over;
                x1 -= over;
            }
            if (x1 < 0)
            {
                x2 -= x1;
                x1 = 0;
            }
            if (x2 >= imageWidth) x2 = imageWidth;
        }
        return new CropRegion(x1, y1, x2, y2);
    }

    /// <summary>The region (inside the image) of an interleaved 8-bit image, Pillow's <c>crop</c>.</summary>
    public static byte[] Crop(byte[] pixels, int width, int channels, CropRegion region)
    {
        var result = new byte[region.Width * region.Height * channels];
        for (int y = 0; y < region.Height; y++)
            Array.Copy(pixels, ((region.Y1 + y) * width + region.X1) * channels, result, y * region.Width * channels, region.Width * channels);
        return result;
    }
}
