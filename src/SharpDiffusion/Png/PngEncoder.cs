using System.Buffers.Binary;
using System.IO.Compression;

namespace SharpDiffusion.Png;

/// <summary>
/// Encodes 8-bit RGB images as PNG (pure managed: zlib via <see cref="ZLibStream"/>). Each row uses filter None or
/// Sub, whichever leaves the smaller sum of absolute byte values (the usual cheap heuristic). Text entries are
/// written before the image data, as Pillow does.
/// </summary>
public static class PngEncoder
{
    /// <param name="rgb">Row-major pixels, 3 bytes (R, G, B) each: <c>width * height * 3</c> bytes.</param>
    public static byte[] Encode(ReadOnlySpan<byte> rgb, int width, int height, IEnumerable<KeyValuePair<string, string>>? text = null,
        CompressionLevel level = CompressionLevel.Optimal)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size {width}x{height} must be positive");
        long expected = (long)width * height * 3;
        if (rgb.Length != expected) throw new ArgumentException($"pixel buffer holds {rgb.Length} bytes, a {width}x{height} RGB image needs {expected}", nameof(rgb));

        var chunks = new List<PngChunk> { new("IHDR", Header(width, height)) };
        if (text != null) chunks.AddRange(text.Select(t => PngTextChunks.CreateTextChunk(t.Key, t.Value)));
        chunks.Add(new PngChunk("IDAT", Compress(rgb, width, height, level)));
        chunks.Add(new PngChunk("IEND", []));
        return PngChunk.Assemble(chunks);
    }

    /// <summary>Encodes and writes atomically (temporary file in the same folder, then rename).</summary>
    public static void Save(string path, ReadOnlySpan<byte> rgb, int width, int height, IEnumerable<KeyValuePair<string, string>>? text = null)
    {
        AtomicFile.WriteAllBytes(path, Encode(rgb, width, height, text));
    }

    private static byte[] Header(int width, int height)
    {
        var data = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(data, width);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(4), height);
        data[8] = 8; // bit depth
        data[9] = 2; // colour type: truecolour (RGB)
        // compression 0 (deflate), filter method 0, interlace 0 (none)
        return data;
    }

    private static byte[] Compress(ReadOnlySpan<byte> rgb, int width, int height, CompressionLevel level)
    {
        int stride = width * 3;
        var none = new byte[stride + 1];
        var sub = new byte[stride + 1];
        sub[0] = 1;
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, level, leaveOpen: true))
        {
            for (int y = 0; y < height; y++)
            {
                var row = rgb.Slice(y * stride, stride);
                row.CopyTo(none.AsSpan(1));
                long costNone = 0, costSub = 0;
                for (int x = 0; x < stride; x++)
                {
                    byte left = x >= 3 ? row[x - 3] : (byte)0;
                    byte filtered = (byte)(row[x] - left);
                    sub[x + 1] = filtered;
                    costNone += (sbyte)row[x] < 0 ? 256 - row[x] : row[x];
                    costSub += (sbyte)filtered < 0 ? 256 - filtered : filtered;
                }
                zlib.Write(costSub < costNone ? sub : none);
            }
        }
        return output.ToArray();
    }
}
