using SkiaSharp;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>
/// Reads an img2img starting image (PNG, JPEG, WebP, ...) and resizes it to the output size, as A1111's
/// "Just resize" mode does (a high-quality resampling filter; A1111 uses PIL's Lanczos).
/// </summary>
public static class InitImageLoader
{
    /// <summary>RGB bytes, row-major, 3 per pixel, of exactly <paramref name="width"/> x <paramref name="height"/>.</summary>
    public static byte[] LoadRgb(string path, int width, int height)
    {
        using var decoded = SKBitmap.Decode(path) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode");
        using var rgba = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (!decoded.ScalePixels(rgba, new SKSamplingOptions(SKCubicResampler.CatmullRom)))
            throw new InvalidDataException($"{path}: cannot resize the image to {width}x{height}");
        var pixels = rgba.GetPixelSpan();
        var rgb = new byte[width * height * 3];
        for (int i = 0, j = 0; i < rgb.Length; i += 3, j += 4)
        {
            rgb[i] = pixels[j];
            rgb[i + 1] = pixels[j + 1];
            rgb[i + 2] = pixels[j + 2];
        }
        return rgb;
    }
}
