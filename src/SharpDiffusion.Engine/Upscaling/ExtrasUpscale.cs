namespace SharpDiffusion.Engine.Upscaling;

/// <summary>One of A1111's upscalers: a built-in one ("Lanczos", "Nearest") or an ESRGAN model.</summary>
public sealed record ExtrasUpscaler(string Name, UpscalerModel? Model = null);

/// <summary>What A1111's "Extras" tab asks of its upscale step (scripts/postprocessing_upscale.py).</summary>
public sealed record ExtrasUpscaleRequest
{
    /// <summary>null: A1111's "None" (the image is returned as it is).</summary>
    public ExtrasUpscaler? Upscaler1 { get; init; }

    /// <summary>A second upscaler blended over the first with <see cref="Upscaler2Visibility"/>; null: none.</summary>
    public ExtrasUpscaler? Upscaler2 { get; init; }

    public double Upscaler2Visibility { get; init; }

    /// <summary>false: "Scale by" <see cref="ScaleBy"/>; true: "Scale to" <see cref="ToWidth"/> x <see cref="ToHeight"/>.</summary>
    public bool ScaleTo { get; init; }

    public double ScaleBy { get; init; } = 2;
    public int ToWidth { get; init; } = 512;
    public int ToHeight { get; init; } = 512;

    /// <summary>"Scale to" with "Crop to fit": the upscaled image centred on a black canvas of exactly that size.</summary>
    public bool Crop { get; init; } = true;
}

/// <summary>
/// A1111's extras upscale (ScriptPostprocessingUpscale.process): each upscaler runs <c>Upscaler.upscale</c> (the
/// target is <c>int(size·scale // 8 · 8)</c>; Lanczos/Nearest resize by the scale, a model runs as in
/// <see cref="ModelUpscale"/>; a final Lanczos fixes the size), "scale to" uses the larger ratio and may crop, a second
/// upscaler is mixed in with Pillow's <c>Image.blend</c>. The infotext fields are A1111's <c>Postprocess ...</c>.
/// </summary>
public static class ExtrasUpscale
{
    public static RgbImage Run(RgbImage image, ExtrasUpscaleRequest request, IList<KeyValuePair<string, string>> info)
    {
        if (request.Upscaler1 == null) return image;
        var result = UpscaleOnce(image, request.Upscaler1, request, info);
        Set(info, "Postprocess upscaler", request.Upscaler1.Name);
        if (request.Upscaler2 != null && request.Upscaler2Visibility > 0)
        {
            var second = UpscaleOnce(image, request.Upscaler2, request, info);
            if (second.Width != result.Width || second.Height != result.Height)
                throw new ArgumentException($"upscaler {request.Upscaler2.Name} made {second.Width}x{second.Height}, upscaler {request.Upscaler1.Name} {result.Width}x{result.Height}: they cannot be blended");
            result = Blend(result, second, request.Upscaler2Visibility);
            Set(info, "Postprocess upscaler 2", request.Upscaler2.Name);
        }
        return result;
    }

    /// <summary>A1111's <c>Upscaler.upscale</c> for one upscaler, with "scale to" and its crop.</summary>
    private static RgbImage UpscaleOnce(RgbImage image, ExtrasUpscaler upscaler, ExtrasUpscaleRequest request, IList<KeyValuePair<string, string>> info)
    {
        double scale = request.ScaleBy;
        if (request.ScaleTo)
        {
            scale = Math.Max((double)request.ToWidth / image.Width, (double)request.ToHeight / image.Height);
            Set(info, "Postprocess upscale to", $"{request.ToWidth}x{request.ToHeight}");
        }
        else
        {
            Set(info, "Postprocess upscale by", PythonFloat(scale));
        }
        var result = Upscale(image, upscaler, scale);
        if (request.ScaleTo && request.Crop)
        {
            // Pillow's paste at (w//2 - image.w//2, h//2 - image.h//2) onto black: a crop at the opposite offset.
            int x = request.ToWidth / 2 - result.Width / 2, y = request.ToHeight / 2 - result.Height / 2;
            result = result.Crop(-x, -y, request.ToWidth, request.ToHeight);
            Set(info, "Postprocess crop to", $"{result.Width}x{result.Height}");
        }
        return result;
    }

    /// <summary>
    /// A1111's <c>Upscaler.upscale(img, scale)</c> for one upscaler: a model as <see cref="ModelUpscale"/> runs it;
    /// Lanczos/Nearest resize by the scale (one <c>do_upscale</c> reaches the target unless the scale is 1); then
    /// Lanczos to the target <c>int(size·scale // 8 · 8)</c> when the size differs.
    /// </summary>
    public static RgbImage Upscale(RgbImage image, ExtrasUpscaler upscaler, double scale)
    {
        if (upscaler.Model != null) return ModelUpscale.Upscale(upscaler.Model, image, scale);
        if (upscaler.Name is not ("Lanczos" or "Nearest")) throw new ArgumentException($"upscaler '{upscaler.Name}' is neither Lanczos, Nearest nor a model");
        var (destW, destH) = ModelUpscale.TargetSize(image.Width, image.Height, scale);
        if (destW <= 0 || destH <= 0) throw new ArgumentException($"scale {scale} makes a {image.Width}x{image.Height} image smaller than 8 pixels (A1111 rounds the size down to a multiple of 8)");
        var result = image;
        if (scale != 1 || result.Width < destW || result.Height < destH)
        {
            int w = (int)(image.Width * scale), h = (int)(image.Height * scale);
            result = upscaler.Name == "Nearest" ? Nearest(image, w, h) : PillowResize.Resize(image, w, h, PillowFilter.Lanczos);
        }
        if (result.Width != destW || result.Height != destH) result = PillowResize.Resize(result, destW, destH, PillowFilter.Lanczos);
        return result;
    }

    /// <summary>Pillow's NEAREST resize: output pixel x takes source pixel <c>floor((x + 0.5) · in / out)</c>.</summary>
    public static RgbImage Nearest(RgbImage image, int width, int height)
    {
        var result = new RgbImage(width, height);
        for (int y = 0; y < height; y++)
        {
            int sy = Math.Min((int)((y + 0.5) * image.Height / height), image.Height - 1);
            for (int x = 0; x < width; x++)
            {
                int sx = Math.Min((int)((x + 0.5) * image.Width / width), image.Width - 1);
                Array.Copy(image.Pixels, (sy * image.Width + sx) * 3, result.Pixels, (y * width + x) * 3, 3);
            }
        }
        return result;
    }

    /// <summary>Pillow's <c>Image.blend(a, b, alpha)</c>: <c>a + alpha·(b − a)</c> in float, truncated to 8 bits.</summary>
    public static RgbImage Blend(RgbImage a, RgbImage b, double alpha)
    {
        var result = new RgbImage(a.Width, a.Height);
        float f = (float)alpha;
        for (int i = 0; i < result.Pixels.Length; i++)
        {
            float value = a.Pixels[i] + f * (b.Pixels[i] - a.Pixels[i]);
            result.Pixels[i] = value <= 0 ? (byte)0 : value >= 255 ? (byte)255 : (byte)value;
        }
        return result;
    }

    /// <summary>Python's <c>str(float)</c> (the API's upscaling_resize is a float: 2 is written "2.0").</summary>
    private static string PythonFloat(double value) => value == Math.Floor(value) && Math.Abs(value) < 1e16
        ? value.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)
        : value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A1111's pp.info is a dict: a key set again keeps its place and takes the new value.</summary>
    private static void Set(IList<KeyValuePair<string, string>> info, string key, string value)
    {
        for (int i = 0; i < info.Count; i++)
        {
            if (info[i].Key != key) continue;
            info[i] = new(key, value);
            return;
        }
        info.Add(new(key, value));
    }
}
