using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Datasets.Emoji;
using SkiaSharp;

namespace SharpDiffusion.Engine.Tests.Datasets;

/// <summary>Rendering with the installed Noto Color Emoji (fonts-noto-color-emoji).</summary>
public class EmojiRendererTests
{
    private const string Family = "👨‍👩‍👧‍👦"; // man ZWJ woman ZWJ girl ZWJ boy
    private const string FlagGermany = "🇩🇪"; // regional indicators D, E (a flag without white, so its ink is one blob)
    private const string RainbowFlag = "🏳️‍🌈"; // white flag, FE0F, ZWJ, rainbow

    [Theory]
    [InlineData(Family, 7)]
    [InlineData(FlagGermany, 2)]
    [InlineData(RainbowFlag, 4)]
    [InlineData("1️⃣", 3)]
    public void SequencesShapeIntoOneGlyphAndRenderAsOneCentredBlobOnWhite(string emoji, int codePoints)
    {
        Assert.Equal(codePoints, emoji.EnumerateRunes().Count());
        using var renderer = EmojiRenderer.Open(EmojiSystemFiles.Font());
        var glyphs = renderer.Shape(emoji);
        Assert.Single(glyphs);
        Assert.NotEqual(0u, glyphs[0]);

        const int size = 64;
        var rgb = renderer.RenderRgb(emoji, size);
        Assert.Equal(size * size * 3, rgb.Length);
        bool Ink(int x, int y) => rgb[(y * size + x) * 3] < 245 || rgb[(y * size + x) * 3 + 1] < 245 || rgb[(y * size + x) * 3 + 2] < 245;
        foreach (var (x, y) in new[] { (0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1) }) Assert.False(Ink(x, y), $"corner {x},{y} is not white");

        // Inked pixels: one 8-connected blob (several glyphs side by side would be several), centred in the square.
        var inked = new HashSet<(int, int)>();
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                if (Ink(x, y)) inked.Add((x, y));
        Assert.True(inked.Count > size * size / 8, $"only {inked.Count} inked pixels");
        var blob = new HashSet<(int, int)> { inked.First() };
        var stack = new Stack<(int X, int Y)>(blob);
        while (stack.Count > 0)
        {
            var (px, py) = stack.Pop();
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    if (inked.Contains((px + dx, py + dy)) && blob.Add((px + dx, py + dy))) stack.Push((px + dx, py + dy));
        }
        Assert.Equal(inked.Count, blob.Count);
        int left = inked.Min(p => p.Item1), right = inked.Max(p => p.Item1), top = inked.Min(p => p.Item2), bottom = inked.Max(p => p.Item2);
        Assert.InRange(left + right - (size - 1), -2, 2);
        Assert.InRange(top + bottom - (size - 1), -2, 2);
        Assert.True(Math.Max(right - left, bottom - top) + 1 >= size * (1 - 2 * EmojiRenderer.Margin) - 2, "the emoji does not fill the square up to the margin");
    }

    [Fact]
    public void EveryEmojiOfTheCaptionListShapesIntoOneGlyphOfTheFont()
    {
        using var renderer = EmojiRenderer.Open(EmojiSystemFiles.Font());
        var entries = EmojiCatalog.ReadList(EmojiSystemFiles.CaptionList());
        var notOne = entries.Where(e => renderer.Shape(e.Text) is var g && (g.Length != 1 || g[0] == 0)).Select(e => e.Name).ToList();
        Assert.True(notOne.Count == 0, "not one glyph: " + string.Join(", ", notOne.Take(10)));
    }

    [Fact]
    public void WritesAKohyaFolderOfPngsWithCaptionFiles()
    {
        using var dir = new TempDir();
        using var renderer = EmojiRenderer.Open(EmojiSystemFiles.Font());
        var entries = EmojiCatalog.ReadList(EmojiSystemFiles.CaptionList()).Where(e => e.Name is "red apple" or "flag: Japan").ToList();
        var broken = new EmojiEntry([0x41, 0x42], "g", "s", "letters", []); // "AB": two glyphs, and not in this font
        var report = EmojiDataset.Write(dir.Path, [.. entries, broken], renderer, size: 32, repeats: 3);

        Assert.Equal(Path.Combine(dir.Path, "3_emoji"), report.Folder);
        Assert.Equal(2, report.Written);
        Assert.Equal("letters", Assert.Single(report.Failed).Entry.Name);
        var files = Directory.GetFiles(report.Folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(4, files.Count);
        var apple = files.Single(f => f!.EndsWith("_red-apple.png", StringComparison.Ordinal))!;
        using var bitmap = SKBitmap.Decode(Path.Combine(report.Folder, apple));
        Assert.Equal((32, 32), (bitmap.Width, bitmap.Height));
        var red = bitmap.GetPixel(16, 18);
        Assert.True(red.Red > 150 && red.Green < 100 && red.Blue < 100, $"the middle of a red apple is {red}");
        var captions = File.ReadAllLines(Path.Combine(report.Folder, Path.ChangeExtension(apple, ".txt")));
        Assert.Equal("red apple", captions[0]);
        Assert.Contains("an emoji of a red apple", captions);
    }

    [Theory]
    [InlineData(255, 0, 0, 76)] // Pillow: Image.new("RGB", (1, 1), (255, 0, 0)).convert("L").getpixel((0, 0)) == 76
    [InlineData(0, 255, 0, 150)]
    [InlineData(0, 0, 255, 29)]
    [InlineData(255, 255, 255, 255)]
    [InlineData(200, 120, 40, 135)] // 59.8 + 70.44 + 4.56 = 134.8 -> 135
    public void GrayscaleIsPillowsLuma(byte r, byte g, byte b, byte expected)
    {
        var rgb = new[] { r, g, b, r, g, b };
        EmojiDataset.ToGrayscale(rgb);
        Assert.Equal(new[] { expected, expected, expected, expected, expected, expected }, rgb);
    }

    [Fact]
    public void TheGrayscaleStyleWritesGrayImagesWithTheSameCaptions()
    {
        using var dir = new TempDir();
        var stderr = new StringWriter();
        int code = CliApp.Run(["dev", "emoji-dataset", "--out", dir.Path, "--size", "32", "--include", "^red apple$", "--style", "grayscale"],
            new StringWriter(), stderr, stderrIsTerminal: false);
        Assert.True(code == 0, stderr.ToString());
        var png = Assert.Single(Directory.GetFiles(dir.File("1_emoji"), "*.png"));
        using var bitmap = SKBitmap.Decode(png);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
            {
                var c = bitmap.GetPixel(x, y);
                Assert.True(c.Red == c.Green && c.Green == c.Blue, $"({x}, {y}) is {c}");
            }
        Assert.True(bitmap.GetPixel(16, 18).Red < 140, "the apple's red becomes a darker gray than the white background");
        Assert.Equal("red apple", File.ReadLines(Path.ChangeExtension(png, ".txt")).First());
        Assert.Equal(0, EmojiRetrieval.MeanSaturation(Rgb(bitmap)));

        Assert.Equal(2, CliApp.Run(["dev", "emoji-dataset", "--out", dir.File("x"), "--style", "sepia"], new StringWriter(), stderr = new StringWriter(), stderrIsTerminal: false));
        Assert.Contains("--style sepia: expected color or grayscale", stderr.ToString());
    }

    [Fact]
    public void MeanSaturationIsHsvSaturationAveraged()
    {
        // (255, 0, 0): 1; (200, 100, 100): (200 - 100) / 200 = 0.5; gray and black: 0.
        Assert.Equal(0.375, EmojiRetrieval.MeanSaturation(new byte[] { 255, 0, 0, 200, 100, 100, 90, 90, 90, 0, 0, 0 }), 12);
    }

    private static byte[] Rgb(SKBitmap bitmap)
    {
        var rgb = new byte[bitmap.Width * bitmap.Height * 3];
        for (int y = 0, i = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++, i += 3)
            {
                var c = bitmap.GetPixel(x, y);
                (rgb[i], rgb[i + 1], rgb[i + 2]) = (c.Red, c.Green, c.Blue);
            }
        return rgb;
    }

    [Fact]
    public void TheCommandNamesAMissingFontOrOutputInOneLine()
    {
        using var dir = new TempDir();
        var stderr = new StringWriter();
        int code = CliApp.Run(["dev", "emoji-dataset", "--out", dir.Path, "--font", dir.File("nope.ttf")], new StringWriter(), stderr, stderrIsTerminal: false);
        Assert.Equal(2, code);
        Assert.Contains("nope.ttf: no such font file", stderr.ToString());
        Assert.Single(stderr.ToString().Trim().Split('\n'));

        stderr = new StringWriter();
        Assert.Equal(2, CliApp.Run(["dev", "emoji-dataset", "--size", "32"], new StringWriter(), stderr, stderrIsTerminal: false));
        Assert.Contains("--out is required", stderr.ToString());
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }
}
