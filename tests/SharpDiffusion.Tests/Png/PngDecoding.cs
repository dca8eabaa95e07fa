using System.Buffers.Binary;
using System.IO.Compression;
using SharpDiffusion.Png;

namespace SharpDiffusion.Tests.Png;

/// <summary>An independent minimal decoder for the tests: 8-bit RGB, non-interlaced, any of the five PNG filters.</summary>
internal static class PngDecoding
{
    public static (int Width, int Height, byte[] Rgb) DecodeRgb(byte[] png)
    {
        var chunks = PngChunk.ReadAll(png, "test");
        var ihdr = chunks[0].Data;
        int width = BinaryPrimitives.ReadInt32BigEndian(ihdr), height = BinaryPrimitives.ReadInt32BigEndian(ihdr.AsSpan(4));
        Assert.Equal(8, ihdr[8]);
        Assert.Equal(2, ihdr[9]);
        Assert.Equal(0, ihdr[12]);
        var compressed = chunks.Where(c => c.Type == "IDAT").SelectMany(c => c.Data).ToArray();
        using var z = new ZLibStream(new MemoryStream(compressed), CompressionMode.Decompress);
        using var raw = new MemoryStream();
        z.CopyTo(raw);
        var data = raw.ToArray();
        int stride = width * 3;
        Assert.Equal((stride + 1) * height, data.Length);
        var rgb = new byte[stride * height];
        for (int y = 0; y < height; y++)
        {
            int filter = data[y * (stride + 1)];
            for (int x = 0; x < stride; x++)
            {
                int a = x >= 3 ? rgb[y * stride + x - 3] : 0;
                int b = y > 0 ? rgb[(y - 1) * stride + x] : 0;
                int c = x >= 3 && y > 0 ? rgb[(y - 1) * stride + x - 3] : 0;
                int f = data[y * (stride + 1) + 1 + x];
                int predicted = filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"filter {filter}"),
                };
                rgb[y * stride + x] = (byte)(f + predicted);
            }
        }
        return (width, height, rgb);
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
