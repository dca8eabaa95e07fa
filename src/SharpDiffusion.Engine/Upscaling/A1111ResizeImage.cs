namespace SharpDiffusion.Engine.Upscaling;

/// <summary>
/// A1111's <c>images.resize_image</c> modes 1 and 2 with no upscaler model (its default for img2img): Pillow Lanczos
/// onto a black canvas. Any interleaved 8-bit image (<c>channels</c> bytes per pixel, row-major); a one-channel mask
/// gives what A1111's RGB canvas holds in each of its equal channels.
/// </summary>
public static class A1111ResizeImage
{
    /// <summary>Mode 1, "Crop and resize": scaled to cover the size, centred, the excess cut off.</summary>
    public static byte[] CropAndResize(byte[] pixels, int width, int height, int channels, int newWidth, int newHeight)
    {
        double ratio = (double)newWidth / newHeight, sourceRatio = (double)width / height;
        int scaledWidth = ratio > sourceRatio ? newWidth : width * newHeight / height;
        int scaledHeight = ratio <= sourceRatio ? newHeight : height * newWidth / width;
        var resized = PillowResize.Resize(pixels, width, height, channels, scaledWidth, scaledHeight, PillowFilter.Lanczos);
        var result = new byte[newWidth * newHeight * channels];
        Paste(result, newWidth, newHeight, resized, scaledWidth, scaledHeight, channels, newWidth / 2 - scaledWidth / 2, newHeight / 2 - scaledHeight / 2);
        return result;
    }

    /// <summary>
    /// Mode 2, "Resize and fill": scaled to fit inside the size, centred, and the empty bands on either side filled
    /// with the resized image's edge rows (or columns) stretched across them (Pillow resize of an empty box at the edge).
    /// </summary>
    public static byte[] ResizeAndFill(byte[] pixels, int width, int height, int channels, int newWidth, int newHeight)
    {
        double ratio = (double)newWidth / newHeight, sourceRatio = (double)width / height;
        int scaledWidth = ratio < sourceRatio ? newWidth : width * newHeight / height;
        int scaledHeight = ratio >= sourceRatio ? newHeight : height * newWidth / width;
        var resized = PillowResize.Resize(pixels, width, height, channels, scaledWidth, scaledHeight, PillowFilter.Lanczos);
        var result = new byte[newWidth * newHeight * channels];
        Paste(result, newWidth, newHeight, resized, scaledWidth, scaledHeight, channels, newWidth / 2 - scaledWidth / 2, newHeight / 2 - scaledHeight / 2);
        if (ratio < sourceRatio)
        {
            int fillHeight = newHeight / 2 - scaledHeight / 2;
            if (fillHeight > 0)
            {
                var top = PillowResize.Resize(resized, scaledWidth, scaledHeight, channels, newWidth, fillHeight, PillowFilter.Lanczos, (0, 0, newWidth, 0));
                Paste(result, newWidth, newHeight, top, newWidth, fillHeight, channels, 0, 0);
                var bottom = PillowResize.Resize(resized, scaledWidth, scaledHeight, channels, newWidth, fillHeight, PillowFilter.Lanczos, (0, scaledHeight, newWidth, scaledHeight));
                Paste(result, newWidth, newHeight, bottom, newWidth, fillHeight, channels, 0, fillHeight + scaledHeight);
            }
        }
        else if (ratio > sourceRatio)
        {
            int fillWidth = newWidth / 2 - scaledWidth / 2;
            if (fillWidth > 0)
            {
                var left = PillowResize.Resize(resized, scaledWidth, scaledHeight, channels, fillWidth, newHeight, PillowFilter.Lanczos, (0, 0, 0, newHeight));
                Paste(result, newWidth, newHeight, left, fillWidth, newHeight, channels, 0, 0);
                var right = PillowResize.Resize(resized, scaledWidth, scaledHeight, channels, fillWidth, newHeight, PillowFilter.Lanczos, (scaledWidth, 0, scaledWidth, newHeight));
                Paste(result, newWidth, newHeight, right, fillWidth, newHeight, channels, fillWidth + scaledWidth, 0);
            }
        }
        return result;
    }

    /// <summary>Pillow's <c>paste(source, (x, y))</c> without a mask, clipped to the canvas.</summary>
    internal static void Paste(byte[] canvas, int width, int height, byte[] source, int sourceWidth, int sourceHeight, int channels, int x, int y)
    {
        int from = Math.Max(0, -x), to = Math.Min(sourceWidth, width - x);
        if (to <= from) return;
        for (int row = Math.Max(0, -y); row < sourceHeight && y + row < height; row++)
            Array.Copy(source, (row * sourceWidth + from) * channels, canvas, ((y + row) * width + x + from) * channels, (to - from) * channels);
    }
}
