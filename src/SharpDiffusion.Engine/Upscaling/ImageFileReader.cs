using SkiaSharp;

namespace SharpDiffusion.Engine.Upscaling;

/// <summary>Reads an image file (PNG, JPEG, WebP, ...) at its own size as 8-bit RGB.</summary>
public static class ImageFileReader
{
    /// <summary>
    /// The colour channels as stored: alpha is dropped without compositing, as Pillow's <c>convert("RGB")</c> does
    /// (A1111's extras tab). Not an image: <see cref="InvalidDataException"/> naming the file.
    /// </summary>
    public static RgbImage LoadRgb(string path)
    {
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = SKBitmap.Decode(codec, info) ?? throw new InvalidDataException($"{path}: cannot decode the image");
        var rgba = bitmap.GetPixelSpan();
        var image = new RgbImage(info.Width, info.Height);
        for (int i = 0, j = 0; i < image.Pixels.Length; i += 3, j += 4)
        {
            image.Pixels[i] = rgba[j];
            image.Pixels[i + 1] = rgba[j + 1];
            image.Pixels[i + 2] = rgba[j + 2];
        }
        return image;
    }
}
