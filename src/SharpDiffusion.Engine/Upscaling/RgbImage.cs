namespace SharpDiffusion.Engine.Upscaling;

/// <summary>An 8-bit RGB image: row-major, 3 bytes (R, G, B) per pixel, <c>Width · Height · 3</c> bytes.</summary>
public sealed class RgbImage
{
    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size {width}x{height} must be positive");
        pixels ??= new byte[checked(width * height * 3)];
        if (pixels.Length != (long)width * height * 3)
            throw new ArgumentException($"{pixels.Length} bytes do not make a {width}x{height} RGB image");
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }

    /// <summary>
    /// Pillow's <c>crop((x, y, x + width, y + height))</c>: the part outside this image is black (A1111's grid crops
    /// past the edge when the image is smaller than a tile).
    /// </summary>
    public RgbImage Crop(int x, int y, int width, int height)
    {
        var result = new RgbImage(width, height);
        for (int row = 0; row < height; row++)
        {
            int sy = y + row;
            if (sy < 0 || sy >= Height) continue;
            int from = Math.Max(x, 0), to = Math.Min(x + width, Width);
            if (to <= from) continue;
            Array.Copy(Pixels, (sy * Width + from) * 3, result.Pixels, (row * width + from - x) * 3, (to - from) * 3);
        }
        return result;
    }

    /// <summary>
    /// Pillow's <c>paste(source, (x, y), mask)</c>, clipped to this image. With a mask (an 8-bit image of the source's
    /// size, row-major) each channel becomes <c>DIV255(out·(255 − m) + src·m)</c>, Pillow's integer blend
    /// (Paste.c); without one the source overwrites.
    /// </summary>
    public void Paste(RgbImage source, int x, int y, byte[]? mask = null)
    {
        if (mask != null && mask.Length != source.Width * source.Height)
            throw new ArgumentException($"mask of {mask.Length} values for a {source.Width}x{source.Height} paste");
        for (int row = 0; row < source.Height; row++)
        {
            int dy = y + row;
            if (dy < 0 || dy >= Height) continue;
            for (int col = 0; col < source.Width; col++)
            {
                int dx = x + col;
                if (dx < 0 || dx >= Width) continue;
                int s = (row * source.Width + col) * 3, d = (dy * Width + dx) * 3;
                if (mask == null)
                {
                    Pixels[d] = source.Pixels[s];
                    Pixels[d + 1] = source.Pixels[s + 1];
                    Pixels[d + 2] = source.Pixels[s + 2];
                    continue;
                }
                int m = mask[row * source.Width + col];
                for (int c = 0; c < 3; c++) Pixels[d + c] = Div255(Pixels[d + c] * (255 - m) + source.Pixels[s + c] * m);
            }
        }
    }

    /// <summary>Pillow's exact a/255 rounding for 0 ≤ a ≤ 255·255: ((a + 128) >> 8 + (a + 128)) >> 8.</summary>
    public static byte Div255(int a)
    {
        int t = a + 128;
        return (byte)(((t >> 8) + t) >> 8);
    }
}
