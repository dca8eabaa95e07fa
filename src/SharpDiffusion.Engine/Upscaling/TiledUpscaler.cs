using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Upscaling;

/// <summary>One tile of A1111's grid: its top-left corner in the image.</summary>
public readonly record struct GridTile(int X, int Y);

/// <summary>
/// A1111's model upscale (modules/upscaler_utils.py <c>upscale_with_model</c> with modules/images.py
/// <c>split_grid</c> / <c>combine_grid</c>): overlapping tiles of the input, each upscaled alone in 8 bits, pasted back
/// with a linear 8-bit ramp over the overlap (later tiles win past it). Tile size 0 upscales the whole image at once.
/// </summary>
public static class TiledUpscaler
{
    /// <summary>A1111's defaults (Settings, Upscaling: "Tile size for ESRGAN upscalers" 192, "Tile overlap" 8).</summary>
    public const int DefaultTileSize = 192;
    public const int DefaultTileOverlap = 8;

    /// <summary>One pass of the model over the image (its native scale).</summary>
    public static RgbImage Upscale(UpscalerModel model, RgbImage image, int tileSize = DefaultTileSize, int tileOverlap = DefaultTileOverlap,
        Action<int, int>? progress = null)
    {
        ValidateTiling(tileSize, tileOverlap);
        if (tileSize == 0)
        {
            progress?.Invoke(0, 1);
            var whole = UpscalePatch(model, image);
            progress?.Invoke(1, 1);
            return whole;
        }
        var (rows, cols) = SplitGrid(image.Width, image.Height, tileSize, tileSize, tileOverlap);
        var tiles = new RgbImage[rows.Count, cols.Count];
        int done = 0, total = rows.Count * cols.Count;
        progress?.Invoke(0, total);
        for (int r = 0; r < rows.Count; r++)
        {
            for (int c = 0; c < cols.Count; c++)
            {
                tiles[r, c] = UpscalePatch(model, image.Crop(cols[c], rows[r], tileSize, tileSize));
                progress?.Invoke(++done, total);
            }
        }
        int scale = tiles[0, 0].Width / tileSize;
        return CombineGrid(tiles, rows.Select(y => y * scale).ToList(), cols.Select(x => x * scale).ToList(),
            image.Width * scale, image.Height * scale, tileOverlap * scale);
    }

    /// <summary>The tile size must leave room past the overlap (A1111 divides by tile − overlap).</summary>
    public static void ValidateTiling(int tileSize, int tileOverlap)
    {
        if (tileSize < 0) throw new ArgumentException($"tile size {tileSize} must be 0 (no tiling) or positive");
        if (tileOverlap < 0) throw new ArgumentException($"tile overlap {tileOverlap} must not be negative");
        if (tileSize > 0 && tileSize <= tileOverlap)
            throw new ArgumentException($"tile size {tileSize} must be larger than the tile overlap {tileOverlap}");
    }

    /// <summary>
    /// split_grid: cols = ceil((w − overlap) / (tile − overlap)), dx = (w − tile) / (cols − 1) (0 for one column),
    /// x = int(col·dx), moved to w − tile when it would reach the edge; rows likewise.
    /// </summary>
    public static (List<int> RowsY, List<int> ColsX) SplitGrid(int width, int height, int tileWidth, int tileHeight, int overlap)
    {
        static List<int> Axis(int size, int tile, int overlap)
        {
            int count = (int)Math.Ceiling((size - overlap) / (double)(tile - overlap));
            double step = count > 1 ? (size - tile) / (double)(count - 1) : 0;
            var positions = new List<int>();
            for (int i = 0; i < count; i++)
            {
                int p = (int)(i * step);
                if (p + tile >= size) p = size - tile;
                positions.Add(p);
            }
            return positions;
        }
        return (Axis(height, tileHeight, overlap), Axis(width, tileWidth, overlap));
    }

    /// <summary>
    /// combine_grid: per row, the first tile at x = 0, every other tile's first <paramref name="overlap"/> columns
    /// blended in with the mask uint8(float32(j)·255/overlap), its rest pasted over; rows joined the same way
    /// vertically.
    /// </summary>
    public static RgbImage CombineGrid(RgbImage[,] tiles, IReadOnlyList<int> rowsY, IReadOnlyList<int> colsX, int width, int height, int overlap)
    {
        int tileH = tiles[0, 0].Height;
        var maskW = RampMask(overlap, tileH, horizontal: true);
        var maskH = RampMask(overlap, width, horizontal: false);
        var combined = new RgbImage(width, height);
        for (int r = 0; r < rowsY.Count; r++)
        {
            var row = new RgbImage(width, tileH);
            for (int c = 0; c < colsX.Count; c++)
            {
                var tile = tiles[r, c];
                int x = colsX[c];
                if (x == 0)
                {
                    row.Paste(tile, 0, 0);
                    continue;
                }
                if (overlap > 0) row.Paste(tile.Crop(0, 0, overlap, tileH), x, 0, maskW);
                row.Paste(tile.Crop(overlap, 0, tile.Width - overlap, tileH), x + overlap, 0);
            }
            int y = rowsY[r];
            if (y == 0)
            {
                combined.Paste(row, 0, 0);
                continue;
            }
            if (overlap > 0) combined.Paste(row.Crop(0, 0, width, overlap), 0, y, maskH);
            combined.Paste(row.Crop(0, overlap, width, tileH - overlap), 0, y + overlap);
        }
        return combined;
    }

    /// <summary>The ramp A1111 builds in float32 and truncates: value(j) = uint8(float32(j)·255/overlap), j &lt; overlap.</summary>
    private static byte[] RampMask(int overlap, int length, bool horizontal)
    {
        if (overlap == 0) return [];
        var ramp = new byte[overlap];
        for (int j = 0; j < overlap; j++) ramp[j] = (byte)(int)((float)j * 255f / overlap);
        var mask = new byte[overlap * length];
        for (int a = 0; a < length; a++)
        {
            for (int j = 0; j < overlap; j++)
            {
                if (horizontal) mask[a * overlap + j] = ramp[j]; // overlap wide, length high
                else mask[j * length + a] = ramp[j];              // length wide, overlap high
            }
        }
        return mask;
    }

    /// <summary>
    /// upscale_pil_patch: RGB bytes -> BGR planes / 255 (float64, then float32) -> model -> clamp(0, 1) -> 255·x in
    /// float32 -> round half to even -> bytes, back to RGB.
    /// </summary>
    public static RgbImage UpscalePatch(UpscalerModel model, RgbImage patch)
    {
        int w = patch.Width, h = patch.Height, plane = w * h;
        var bgr = new float[3 * plane];
        for (int i = 0; i < plane; i++)
        {
            for (int c = 0; c < 3; c++) bgr[(2 - c) * plane + i] = (float)(patch.Pixels[i * 3 + c] / 255.0);
        }
        using var scope = NewDisposeScope();
        using var input = tensor(bgr, new long[] { 1, 3, h, w });
        var output = model.Forward(input);
        int ow = (int)output.shape[3], oh = (int)output.shape[2];
        var levels = output.clamp(0.0, 1.0).mul(255.0f).round().to(ScalarType.Byte).contiguous();
        var bytes = levels.data<byte>().ToArray();
        var result = new RgbImage(ow, oh);
        int outPlane = ow * oh;
        for (int i = 0; i < outPlane; i++)
        {
            for (int c = 0; c < 3; c++) result.Pixels[i * 3 + c] = bytes[(2 - c) * outPlane + i];
        }
        return result;
    }
}
