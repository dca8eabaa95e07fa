namespace SharpDiffusion.Engine.Upscaling;

/// <summary>
/// A1111's <c>Upscaler.upscale(img, scale)</c> (modules/upscaler.py): the target is <c>int((size·scale) // 8 · 8)</c>;
/// the model runs up to three times until the image reaches it (at least once unless the scale is 1), then Pillow's
/// Lanczos resizes to the target when the model's size differs.
/// </summary>
public static class ModelUpscale
{
    public static (int Width, int Height) TargetSize(int width, int height, double scale) =>
        ((int)(Math.Floor(width * scale / 8) * 8), (int)(Math.Floor(height * scale / 8) * 8));

    public static RgbImage Upscale(UpscalerModel model, RgbImage image, double scale, int tileSize = TiledUpscaler.DefaultTileSize,
        int tileOverlap = TiledUpscaler.DefaultTileOverlap, Action<int, int, int>? progress = null)
    {
        if (!(scale > 0) || double.IsInfinity(scale)) throw new ArgumentException($"scale {scale} must be a positive number");
        TiledUpscaler.ValidateTiling(tileSize, tileOverlap);
        var (destW, destH) = TargetSize(image.Width, image.Height, scale);
        if (destW <= 0 || destH <= 0)
            throw new ArgumentException($"scale {scale} makes a {image.Width}x{image.Height} image smaller than 8 pixels (A1111 rounds the size down to a multiple of 8)");
        for (int pass = 0; pass < 3; pass++)
        {
            if (image.Width >= destW && image.Height >= destH && (pass > 0 || scale != 1)) break;
            int before = image.Width * 65536 + image.Height;
            int passIndex = pass;
            image = TiledUpscaler.Upscale(model, image, tileSize, tileOverlap, progress == null ? null : (done, total) => progress(passIndex, done, total));
            if (image.Width * 65536 + image.Height == before) break;
        }
        if (image.Width != destW || image.Height != destH) image = PillowResize.Resize(image, destW, destH, PillowFilter.Lanczos);
        return image;
    }
}
