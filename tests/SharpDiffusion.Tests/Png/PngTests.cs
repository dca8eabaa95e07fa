using System.IO.Compression;
using System.Text;
using SharpDiffusion.Png;

namespace SharpDiffusion.Tests.Png;

public class PngTests
{
    private static byte[] Gradient(int width, int height)
    {
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 3;
                rgb[i] = (byte)(x * 4);
                rgb[i + 1] = (byte)(y * 7);
                rgb[i + 2] = (byte)((x * y) ^ 0x5A);
            }
        return rgb;
    }

    [Fact]
    public void Crc32MatchesKnownValues()
    {
        Assert.Equal(0xCBF43926u, Crc32.Compute("123456789"u8));
        // Every PNG ends with IEND and this CRC.
        Assert.Equal(0xAE426082u, Crc32.Compute("IEND"u8));
    }

    [Fact]
    public void EncodedImageDecodesToTheSamePixels()
    {
        var rgb = Gradient(37, 23);
        var noise = new byte[16 * 9 * 3];
        new Random(5).NextBytes(noise);

        foreach (var (pixels, w, h) in new[] { (rgb, 37, 23), (noise, 16, 9) })
        {
            var png = PngEncoder.Encode(pixels, w, h);
            var (dw, dh, decoded) = PngDecoding.DecodeRgb(png);
            Assert.Equal((w, h), (dw, dh));
            Assert.Equal(pixels, decoded);
            Assert.Equal(PngChunk.Signature, png[..8]);
            Assert.Equal([0, 0, 0, 0, (byte)'I', (byte)'E', (byte)'N', (byte)'D', 0xAE, 0x42, 0x60, 0x82], png[^12..]);
        }
    }

    [Fact]
    public void TextIsWrittenBeforeImageDataAndReadBack()
    {
        var png = PngEncoder.Encode(Gradient(4, 4), 4, 4, [new("parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7"), new("Software", "SharpDiffusion")]);

        var chunks = PngChunk.ReadAll(png, "test").Select(c => c.Type).ToList();
        var texts = PngTextChunks.Read(png);

        Assert.Equal(["IHDR", "tEXt", "tEXt", "IDAT", "IEND"], chunks);
        Assert.Equal("a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7", PngTextChunks.Get(texts, "parameters"));
        Assert.Equal("SharpDiffusion", PngTextChunks.Get(texts, "Software"));
        Assert.All(texts, t => Assert.Equal("tEXt", t.ChunkType));
    }

    [Fact]
    public void SetTextReplacesTheEntryAndKeepsTheRest()
    {
        var png = PngEncoder.Encode(Gradient(3, 2), 3, 2, [new("parameters", "old"), new("Comment", "keep me")]);

        var updated = PngTextChunks.SetText(png, "parameters", "new text");
        var texts = PngTextChunks.Read(updated);

        Assert.Single(texts, t => t.Keyword == "parameters");
        Assert.Equal("new text", PngTextChunks.Get(texts, "parameters"));
        Assert.Equal("keep me", PngTextChunks.Get(texts, "Comment"));
        Assert.Equal(PngDecoding.DecodeRgb(png).Rgb, PngDecoding.DecodeRgb(updated).Rgb);
        var types = PngChunk.ReadAll(updated, "t").Select(c => c.Type).ToList();
        Assert.True(types.IndexOf("IDAT") > types.LastIndexOf("tEXt"));
    }

    [Fact]
    public void TextOutsideLatin1IsStoredAsInternationalText()
    {
        const string prompt = "a café in 東京, 🐱";
        var png = PngTextChunks.SetText(PngEncoder.Encode(Gradient(2, 2), 2, 2), "parameters", prompt);

        var text = PngTextChunks.Read(png).Single();

        Assert.Equal("iTXt", text.ChunkType);
        Assert.Equal(prompt, text.Text);
        Assert.Equal("tEXt", PngTextChunks.CreateTextChunk("parameters", "café").Type);
    }

    [Fact]
    public void CompressedTextChunksAreRead()
    {
        var png = PngEncoder.Encode(Gradient(2, 2), 2, 2);
        var chunks = PngChunk.ReadAll(png, "t");
        chunks.Insert(1, new PngChunk("zTXt", [.. Encoding.Latin1.GetBytes("Comment"), 0, 0, .. Deflate(Encoding.Latin1.GetBytes("squeezed text"))]));
        chunks.Insert(1, new PngChunk("iTXt", [.. "Title"u8, 0, 1, 0, .. "en"u8, 0, .. "Titel"u8, 0, .. Deflate(Encoding.UTF8.GetBytes("Überschrift"))]));

        var texts = PngTextChunks.Read(PngChunk.Assemble(chunks));

        Assert.Equal("squeezed text", PngTextChunks.Get(texts, "Comment"));
        var title = texts.Single(t => t.Keyword == "Title");
        Assert.Equal(("Überschrift", "en", "Titel", "iTXt"), (title.Text, title.LanguageTag, title.TranslatedKeyword, title.ChunkType));
    }

    private static byte[] Deflate(byte[] data)
    {
        using var output = new MemoryStream();
        using (var z = new ZLibStream(output, CompressionLevel.Optimal)) z.Write(data);
        return output.ToArray();
    }

    [Fact]
    public void CorruptCrcIsReported()
    {
        var png = PngEncoder.Encode(Gradient(2, 2), 2, 2, [new("parameters", "x")]);
        png[^13] ^= 0xFF; // the last byte of the IDAT chunk's CRC (IEND is the final 12 bytes)

        var e = Assert.Throws<PngFormatException>(() => PngTextChunks.Read(png, "img.png"));

        Assert.StartsWith("img.png: CRC mismatch", e.Message);
    }

    [Fact]
    public void NonPngAndTruncatedFilesAreReported()
    {
        Assert.Contains("signature", Assert.Throws<PngFormatException>(() => PngTextChunks.Read("GIF89a......"u8.ToArray())).Message);
        var png = PngEncoder.Encode(Gradient(2, 2), 2, 2);
        Assert.Throws<PngFormatException>(() => PngTextChunks.Read(png.AsSpan(0, png.Length - 12)));
    }

    [Theory]
    [InlineData("")]
    [InlineData(" lead")]
    [InlineData("double  space")]
    [InlineData("tab\there")]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public void InvalidKeywordsAreRefused(string keyword)
    {
        Assert.Throws<ArgumentException>(() => PngTextChunks.CreateTextChunk(keyword, "x"));
    }

    [Fact]
    public void SaveAndSetTextOnFilesAreAtomic()
    {
        using var dir = new TempDir();
        string path = dir.File("out.png");
        var rgb = Gradient(5, 5);

        PngEncoder.Save(path, rgb, 5, 5, [new("parameters", "first")]);
        PngTextChunks.SetText(path, path, "parameters", "second");

        Assert.Equal(["out.png"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
        Assert.Equal("second", PngTextChunks.Get(PngTextChunks.Read(path), "parameters"));
        Assert.Equal(rgb, PngDecoding.DecodeRgb(File.ReadAllBytes(path)).Rgb);
    }

    [Fact]
    public void WrongPixelBufferSizeIsRefused()
    {
        Assert.Throws<ArgumentException>(() => PngEncoder.Encode(new byte[10], 2, 2));
    }
}
