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
/// The canvas of an outpainting job: its size, where the original image sits (the borders as distributed), and the
/// overlap of A1111's tile grid (the script's <c>pixels</c>; here the largest border).
/// </summary>
public sealed record OutpaintTiles(int CanvasWidth, int CanvasHeight, int Left, int Right, int Up, int Down, int Overlap)
{
    /// <summary>The script's skip test: a tile wholly inside the original image is kept as it is.</summary>
    public bool InsideImage(int x, int y, int width, int height) =>
        x >= Left && x + width <= CanvasWidth - Right && y >= Up && y + height <= CanvasHeight - Down;
}

/// <summary>
/// A1111's "Poor man's outpainting" (scripts/poor_mans_outpainting.py): the canvas is the image plus the borders
/// rounded up to multiples of 64 (the extra shared between opposite sides as the script does; in a direction where
/// neither side grows it goes to the right / bottom, which then count as growing), the image pasted on black; the
/// mask is white with a black rectangle over the image, inset by 2·blur on each side that grows, blurred with 2·blur;
/// the latent mask (A1111's <c>p.latent_mask</c>, unblurred) is inset by blur / 2. The canvas is split with
/// <c>split_grid</c> into job-sized tiles overlapping by the border width; every tile not wholly inside the original
/// image is inpainted as its own job (seed, seed + 1, ... in grid order), and <c>combine_grid</c> joins them.
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
        // Tiles are the job size, cut to the canvas where it is smaller (A1111 would crop past the canvas's edge).
        int tileWidth = Math.Min(request.Width, canvasWidth), tileHeight = Math.Min(request.Height, canvasHeight);
        int overlap = Math.Max(Math.Max(borders.Left, borders.Right), Math.Max(borders.Up, borders.Down));
        bool oneTile = tileWidth == canvasWidth && tileHeight == canvasHeight;
        if (!oneTile && overlap >= Math.Min(tileWidth, tileHeight))
            throw new ArgumentException($"outpainting by {overlap} pixels with {tileWidth}x{tileHeight} tiles: the tiles overlap by the border, so they must be larger than {overlap} (raise --width/--height)");
        if (request.BatchSize != 1) throw new ArgumentException("outpainting makes one image per job (A1111's script sets batch size 1)");
        return request with
        {
            InitImage = canvas.Pixels,
            Width = tileWidth,
            Height = tileHeight,
            ImageSize = (canvasWidth, canvasHeight),
            Mask = MaskWithHole(blur * 2),
            LatentMask = MaskWithHole(blur / 2),
            MaskBlur = blur * 2,
            Outpaint = null,
            OutpaintTiles = new OutpaintTiles(canvasWidth, canvasHeight, left, right, up, down, overlap),
        };
    }

    /// <summary>One tile's inpainting job: the canvas, mask and latent mask cut at (x, y), seed as given.</summary>
    public static GenerationRequest TileRequest(GenerationRequest canvasRequest, int x, int y, long seed)
    {
        var tiles = canvasRequest.OutpaintTiles!;
        int w = canvasRequest.Width, h = canvasRequest.Height;
        byte[] CutMask(byte[] mask)
        {
            var tile = new byte[w * h];
            for (int row = 0; row < h; row++)
                Array.Copy(mask, (y + row) * tiles.CanvasWidth + x, tile, row * w, w);
            return tile;
        }
        return canvasRequest with
        {
            InitImage = new RgbImage(tiles.CanvasWidth, tiles.CanvasHeight, canvasRequest.InitImage!).Crop(x, y, w, h).Pixels,
            ImageSize = null,
            Mask = CutMask(canvasRequest.Mask!),
            LatentMask = CutMask(canvasRequest.LatentMask!),
            OutpaintTiles = null,
            Seed = seed,
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
