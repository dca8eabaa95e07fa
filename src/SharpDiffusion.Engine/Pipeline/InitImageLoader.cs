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

    /// <summary>
    /// The request with its init image and optional mask read from files, as A1111's img2img does: "only masked"
    /// (<see cref="GenerationRequest.InpaintFullRes"/>) and outpainting keep the image's own size
    /// (<see cref="GenerationRequest.ImageSize"/>), anything else is resized to the output size; the mask follows the image.
    /// </summary>
    public static GenerationRequest Attach(GenerationRequest request, string initPath, string? maskPath, out (int Width, int Height)? maskResizedFrom)
    {
        var (imageWidth, imageHeight) = (request.Width, request.Height);
        if (request.InpaintFullRes || request.Outpaint != null)
        {
            var rgb = LoadRgb(initPath, out imageWidth, out imageHeight);
            request = request with { InitImage = rgb, ImageSize = (imageWidth, imageHeight) };
        }
        else if (request.ResizeMode == InitResizeMode.LatentUpscale)
        {
            // A1111 resize_mode 3: no pixel resize; the generator stretches the latents.
            if (maskPath != null) throw new ArgumentException("the latent-upscale resize mode (A1111's 3) with an inpainting mask is not supported yet");
            var rgb = LoadRgb(initPath, out imageWidth, out imageHeight);
            maskResizedFrom = null;
            return request with { InitImage = rgb, ImageSize = (imageWidth, imageHeight) };
        }
        else if (request.ResizeMode != InitResizeMode.JustResize)
        {
            // A1111: create_binary_mask on the mask as given, then resize_image(resize_mode, ...) of image and mask alike.
            var rgb = LoadRgb(initPath, out int ownWidth, out int ownHeight);
            request = request with { InitImage = Resize(request.ResizeMode, rgb, ownWidth, ownHeight, 3, imageWidth, imageHeight) };
            maskResizedFrom = null;
            if (maskPath == null) return request;
            var mask = LoadMask(maskPath, out int maskWidth, out int maskHeight);
            if ((maskWidth, maskHeight) != (imageWidth, imageHeight)) maskResizedFrom = (maskWidth, maskHeight);
            return request with { Mask = Resize(request.ResizeMode, mask, maskWidth, maskHeight, 1, imageWidth, imageHeight) };
        }
        else
        {
            request = request with { InitImage = LoadRgb(initPath, imageWidth, imageHeight) };
        }
        maskResizedFrom = null;
        if (maskPath != null) request = request with { Mask = LoadMask(maskPath, imageWidth, imageHeight, out maskResizedFrom) };
        return request;
    }

    private static byte[] Resize(InitResizeMode mode, byte[] pixels, int width, int height, int channels, int newWidth, int newHeight) => mode switch
    {
        InitResizeMode.CropAndResize => Upscaling.A1111ResizeImage.CropAndResize(pixels, width, height, channels, newWidth, newHeight),
        _ => Upscaling.A1111ResizeImage.ResizeAndFill(pixels, width, height, channels, newWidth, newHeight),
    };

    /// <summary>The image at its own size (A1111's "only masked" and outpainting keep it): RGB bytes, row-major.</summary>
    public static byte[] LoadRgb(string path, out int width, out int height)
    {
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode");
        (width, height) = (codec.Info.Width, codec.Info.Height);
        return LoadRgb(path, width, height);
    }

    /// <summary>The mask at its own size (as <see cref="LoadMask(string, int, int, out ValueTuple{int, int}?)"/> reads it).</summary>
    public static byte[] LoadMask(string path, out int width, out int height)
    {
        using var codec = SKCodec.Create(path) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode");
        (width, height) = (codec.Info.Width, codec.Info.Height);
        return LoadMask(path, width, height, out _);
    }

    /// <summary>
    /// An inpainting mask as A1111's <c>create_binary_mask</c> reads it: an image with transparency gives its alpha
    /// thresholded (255 where alpha &gt; 128, else 0), any other its <c>convert('L')</c> luma
    /// (Pillow's <c>(R·19595 + G·38470 + B·7471 + 0x8000) &gt;&gt; 16</c>); one byte per pixel, 255 = repaint.
    /// A mask of another size is resized to the output size (<paramref name="resizedFrom"/> says from what).
    /// </summary>
    public static byte[] LoadMask(string path, int width, int height, out (int Width, int Height)? resizedFrom)
    {
        using var decoded = SKBitmap.Decode(path) ?? throw new InvalidDataException($"{path}: not an image SkiaSharp can decode");
        resizedFrom = decoded.Width == width && decoded.Height == height ? null : (decoded.Width, decoded.Height);
        using var rgba = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (!decoded.ScalePixels(rgba, new SKSamplingOptions(SKCubicResampler.CatmullRom)))
            throw new InvalidDataException($"{path}: cannot resize the mask to {width}x{height}");
        var pixels = rgba.GetPixelSpan();
        var mask = new byte[width * height];
        bool transparent = false;
        for (int j = 3; j < pixels.Length; j += 4) transparent |= pixels[j] != 255;
        for (int i = 0, j = 0; i < mask.Length; i++, j += 4)
        {
            mask[i] = transparent
                ? (byte)(pixels[j + 3] > 128 ? 255 : 0)
                : Upscaling.PillowLuma.Of(pixels[j], pixels[j + 1], pixels[j + 2]);
        }
        return mask;
    }
}
