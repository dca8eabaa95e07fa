using SkiaSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>Reads a training image into its bucket: scaled to cover it, centre-cropped, [1, 3, H, W] in [−1, 1].</summary>
public static class TrainingImageLoader
{
    public static Tensor Load(string path, int width, int height, bool flip = false)
    {
        using var decoded = SKBitmap.Decode(path) ?? throw new InvalidDataException($"{path}: unreadable image");
        double scale = Math.Max((double)width / decoded.Width, (double)height / decoded.Height);
        int scaledW = Math.Max(width, (int)Math.Round(decoded.Width * scale)), scaledH = Math.Max(height, (int)Math.Round(decoded.Height * scale));
        using var scaled = new SKBitmap(new SKImageInfo(scaledW, scaledH, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (!decoded.ScalePixels(scaled, new SKSamplingOptions(SKCubicResampler.CatmullRom)))
            throw new InvalidDataException($"{path}: cannot resize the image to {scaledW}x{scaledH}");
        int left = (scaledW - width) / 2, top = (scaledH - height) / 2;
        var pixels = scaled.GetPixelSpan();
        var values = new float[3 * width * height];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int sx = flip ? left + width - 1 - x : left + x;
                int src = ((top + y) * scaledW + sx) * 4;
                for (int c = 0; c < 3; c++) values[(c * height + y) * width + x] = pixels[src + c] / 127.5f - 1f;
            }
        }
        return tensor(values, new long[] { 1, 3, height, width });
    }
}
