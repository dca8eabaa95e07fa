using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Upscaling;

namespace SharpDiffusion.Engine.Inpainting;

/// <summary>Pixels to add on each side of the image (A1111's outpainting directions left, right, up, down).</summary>
public sealed record OutpaintBorders(int Left, int Right, int Up, int Down)
{
    /// <summary>"L,R,U,D" (four non-negative integers, at least one above 0).</summary>
    public static OutpaintBorders Parse(string text)
    {
        var parts = text.Split(',');
        if (parts.Length != 4 || !parts.All(p => int.TryParse(p.Trim(), out int v) && v >= 0))
            throw new ArgumentException($"--outpaint {text}: expected left,right,up,down as four whole numbers of pixels, 0 or more");
        var v = parts.Select(p => int.Parse(p.Trim(), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (v.All(x => x == 0)) throw new ArgumentException($"--outpaint {text}: at least one side must grow");
        return new OutpaintBorders(v[0], v[1], v[2], v[3]);
    }
}

/// <summary>
/// A1111's "Poor man's outpainting" (scripts/poor_mans_outpainting.py), as one inpainting pass over the whole canvas
/// instead of the script's per-tile passes: the canvas is the image plus the borders rounded up to multiples of 64
/// (the extra shared between opposite sides as the script does; in a direction where neither side grows it goes to the
/// right / bottom, which then count as growing), the image pasted on black; the mask is white with a
/// black rectangle over the image, inset by 2·blur on each side that grows, blurred with 2·blur; the latent mask
/// (A1111's <c>p.latent_mask</c>, unblurred) is inset by blur / 2.
/// </summary>
public static class Outpainting
{
    /// <summary>The request as an inpainting job on the canvas (its <see cref="GenerationRequest.Outpaint"/> cleared).</summary>
    public static GenerationRequest Expand(GenerationRequest request)
    {
        var borders = request.Outpaint ?? throw new ArgumentException("no outpainting borders");
        if (request.InitImage == null) throw new ArgumentException("outpainting needs an init image");
        if (request.Mask != null) throw new ArgumentException("outpainting makes its own mask (no --mask)");
        if (request.InpaintFullRes) throw new ArgumentException("outpainting repaints the whole canvas (no --inpaint-full-res)");
        var (width, height) = request.ImageSize ?? (request.Width, request.Height);
        if (request.InitImage.Length != width * height * 3)
            throw new ArgumentException($"init image has {request.InitImage.Length} bytes, {width}x{height} RGB needs {width * height * 3}");
        int blur = (int)request.MaskBlur;

        var (left, right, up, down) = borders;
        int canvasWidth = (width + left + right + 63) / 64 * 64;
        int canvasHeight = (height + up + down + 63) / 64 * 64;
        if (left > 0) left = left * (canvasWidth - width) / (left + right);
        if (right > 0) right = canvasWidth - width - left;
        if (up > 0) up = up * (canvasHeight - height) / (up + down);
        if (down > 0) down = canvasHeight - height - up;
        // The script leaves a rounding band on a direction that does not grow black and unmasked; it grows (right / down) here.
        if (left + right == 0) right = canvasWidth - width;
        if (up + down == 0) down = canvasHeight - height;

        var canvas = new RgbImage(canvasWidth, canvasHeight);
        canvas.Paste(new RgbImage(width, height, request.InitImage), left, up);
        byte[] MaskWithHole(int inset) => RectangleMask(canvasWidth, canvasHeight,
            left + (left > 0 ? inset : 0), up + (up > 0 ? inset : 0),
            canvasWidth - right - (right > 0 ? inset : 0), canvasHeight - down - (down > 0 ? inset : 0));
        return request with
        {
            InitImage = canvas.Pixels,
            Width = canvasWidth,
            Height = canvasHeight,
            ImageSize = null,
            Mask = MaskWithHole(blur * 2),
            LatentMask = MaskWithHole(blur / 2),
            MaskBlur = blur * 2,
            Outpaint = null,
        };
    }

    /// <summary>White (255) everywhere but a black rectangle drawn as Pillow's <c>ImageDraw.rectangle((x0, y0, x1, y1))</c>: both corners inclusive.</summary>
    internal static byte[] RectangleMask(int width, int height, int x0, int y0, int x1, int y1)
    {
        var mask = new byte[width * height];
        Array.Fill(mask, (byte)255);
        for (int y = Math.Max(y0, 0); y <= Math.Min(y1, height - 1); y++)
            for (int x = Math.Max(x0, 0); x <= Math.Min(x1, width - 1); x++)
                mask[y * width + x] = 0;
        return mask;
    }
}
