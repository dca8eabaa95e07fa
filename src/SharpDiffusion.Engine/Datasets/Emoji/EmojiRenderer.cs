using SkiaSharp;
using SkiaSharp.HarfBuzz;

namespace SharpDiffusion.Engine.Datasets.Emoji;

/// <summary>
/// Renders one emoji with Noto Color Emoji: shaped by HarfBuzz (so ZWJ sequences, flags and keycaps become the one
/// glyph the font has for them), drawn at the font's native bitmap size, cropped to its visible pixels, scaled to fit
/// a square with a margin, centred on white. Never flipped (flags and arrows have a direction).
/// </summary>
public sealed class EmojiRenderer : IDisposable
{
    /// <summary>Noto Color Emoji's bitmap strike (CBDT, 109 px per em): drawing at this size scales nothing up.</summary>
    private const float NativeFontSize = 109;

    /// <summary>Share of the side left empty on each side of the emoji.</summary>
    public const float Margin = 1f / 16;

    /// <summary>Where distributions install the font (Debian: fonts-noto-color-emoji).</summary>
    public static readonly IReadOnlyList<string> KnownFontPaths =
    [
        "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
        "/usr/share/fonts/noto/NotoColorEmoji.ttf",
        "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
        "/usr/share/fonts/noto-emoji/NotoColorEmoji.ttf",
    ];

    private readonly SKTypeface _typeface;
    private readonly SKFont _font;
    private readonly SKShaper _shaper;

    private EmojiRenderer(string fontPath, SKTypeface typeface)
    {
        FontPath = fontPath;
        _typeface = typeface;
        _font = new SKFont(typeface, NativeFontSize) { Subpixel = true };
        _shaper = new SKShaper(typeface);
    }

    public string FontPath { get; }

    /// <summary>The first of <see cref="KnownFontPaths"/> that exists, or null.</summary>
    public static string? FindFont() => KnownFontPaths.FirstOrDefault(File.Exists);

    /// <summary>Opens the font at <paramref name="fontPath"/>, else the installed Noto Color Emoji.</summary>
    /// <exception cref="FileNotFoundException">No font there, or none installed (the message says what to install).</exception>
    /// <exception cref="InvalidDataException">The file is not a font SkiaSharp reads.</exception>
    public static EmojiRenderer Open(string? fontPath = null)
    {
        var path = fontPath ?? FindFont() ?? throw new FileNotFoundException(
            "Noto Color Emoji not found (looked in " + string.Join(", ", KnownFontPaths)
            + "): install the Debian package fonts-noto-color-emoji, or pass --font PATH");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such font file", path);
        var typeface = SKTypeface.FromFile(path) ?? throw new InvalidDataException($"{path}: not a font file SkiaSharp can read");
        return new EmojiRenderer(path, typeface);
    }

    /// <summary>The glyphs HarfBuzz shapes the text into (one for every emoji the font supports as a whole).</summary>
    public uint[] Shape(string text) => _shaper.Shape(text, _font).Codepoints;

    /// <summary>
    /// The emoji as RGB bytes (row-major, <paramref name="size"/>² × 3), or throws when the font does not draw it as
    /// one visible glyph.
    /// </summary>
    /// <exception cref="EmojiRenderException">The text shapes into several glyphs, a missing glyph, or nothing visible.</exception>
    public byte[] RenderRgb(string text, int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 8);
        var glyphs = Shape(text);
        if (glyphs.Length != 1) throw new EmojiRenderException($"shapes into {glyphs.Length} glyphs, not 1 (the font has no single glyph for it)");
        if (glyphs[0] == 0) throw new EmojiRenderException("the font has no glyph for it");

        using var drawn = DrawNative(text);
        var bounds = VisibleBounds(drawn) ?? throw new EmojiRenderException("draws nothing visible");

        using var target = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(target))
        {
            canvas.Clear(SKColors.White);
            float box = size * (1 - 2 * Margin);
            float scale = box / Math.Max(bounds.Width, bounds.Height);
            float w = bounds.Width * scale, h = bounds.Height * scale;
            var destination = SKRect.Create((size - w) / 2, (size - h) / 2, w, h);
            using var image = SKImage.FromBitmap(drawn);
            // Mipmaps make the ~2-3x reduction an area average instead of a sparse point sample.
            canvas.DrawImage(image, bounds, destination, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear));
            canvas.Flush();
        }

        var rgba = target.GetPixelSpan();
        var rgb = new byte[size * size * 3];
        for (int i = 0, j = 0; i < rgba.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[i];
            rgb[j + 1] = rgba[i + 1];
            rgb[j + 2] = rgba[i + 2];
        }
        return rgb;
    }

    /// <summary>The text drawn at the native size on a transparent canvas with room on every side.</summary>
    private SKBitmap DrawNative(string text)
    {
        int side = (int)(NativeFontSize * 2);
        var bitmap = new SKBitmap(new SKImageInfo(side, side, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(bitmap);
        canvas.Clear(SKColors.Transparent);
        using var paint = new SKPaint { IsAntialias = true };
        canvas.DrawShapedText(_shaper, text, NativeFontSize / 2, NativeFontSize * 1.4f, SKTextAlign.Left, _font, paint);
        canvas.Flush();
        return bitmap;
    }

    /// <summary>The smallest rectangle holding every pixel that is not fully transparent, or null when none is.</summary>
    private static SKRect? VisibleBounds(SKBitmap bitmap)
    {
        var pixels = bitmap.GetPixelSpan();
        int width = bitmap.Width, height = bitmap.Height;
        int left = width, top = height, right = -1, bottom = -1;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                if (pixels[(y * width + x) * 4 + 3] == 0) continue;
                left = Math.Min(left, x);
                right = Math.Max(right, x);
                top = Math.Min(top, y);
                bottom = Math.Max(bottom, y);
            }
        }
        return right < 0 ? null : new SKRect(left, top, right + 1, bottom + 1);
    }

    public void Dispose()
    {
        _shaper.Dispose();
        _font.Dispose();
        _typeface.Dispose();
    }
}

/// <summary>An emoji the font cannot draw as one glyph.</summary>
public sealed class EmojiRenderException(string message) : Exception(message);
