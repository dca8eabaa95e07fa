using System.Globalization;
using System.Text;
using SharpDiffusion.Png;

namespace SharpDiffusion.Engine.Datasets.Emoji;

/// <summary>What <see cref="EmojiDataset.Write"/> did.</summary>
/// <param name="Folder">The kohya concept folder the images went to.</param>
/// <param name="Written">Images written.</param>
/// <param name="Failed">Emoji the font could not draw as one glyph, with the reason (none were written).</param>
public sealed record EmojiDatasetReport(string Folder, int Written, IReadOnlyList<(EmojiEntry Entry, string Problem)> Failed);

/// <summary>How the emoji are drawn: the font's colours, or a style an extended model can be taught (hypernetwork demo).</summary>
public enum EmojiStyle
{
    Color,
    /// <summary>Pillow's <c>convert("L")</c> luma (ITU-R 601: 299 R + 587 G + 114 B, /1000, rounded) in all three channels.</summary>
    Grayscale,
}

/// <summary>
/// Writes the emoji training set in kohya's folder layout: <c>OUT/{repeats}_emoji/NNNN_slug.png</c> with a
/// <c>.txt</c> beside each image whose first line is the emoji's name and whose next lines are caption variants.
/// </summary>
public static class EmojiDataset
{
    public const string Concept = "emoji";

    private const string AccentedLetters = "àáâãäåçèéêëìíîïñòóôõöøùúûüýÿ";
    private const string PlainLetters = "aaaaaaceeeeiiiinoooooouuuuyy";

    /// <exception cref="IOException">The output folder cannot be written.</exception>
    public static EmojiDatasetReport Write(string outputFolder, IReadOnlyList<EmojiEntry> entries, EmojiRenderer renderer, int size,
        int repeats = 1, Action<int, int>? progress = null, EmojiStyle style = EmojiStyle.Color)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(repeats, 1);
        var folder = Path.Combine(outputFolder, $"{repeats}_{Concept}");
        Directory.CreateDirectory(folder);
        var failed = new List<(EmojiEntry, string)>();
        int written = 0;
        for (int i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            byte[] rgb;
            try
            {
                rgb = renderer.RenderRgb(entry.Text, size);
                if (style == EmojiStyle.Grayscale) ToGrayscale(rgb);
            }
            catch (EmojiRenderException e)
            {
                failed.Add((entry, e.Message));
                continue;
            }
            var stem = Path.Combine(folder, FileStem(i, entry.Name));
            PngEncoder.Save(stem + ".png", rgb, size, size);
            WriteTextAtomically(stem + ".txt", string.Join('\n', EmojiCaptions.For(entry)) + "\n");
            written++;
            progress?.Invoke(i + 1, entries.Count);
        }
        return new EmojiDatasetReport(folder, written, failed);
    }

    /// <summary>Pillow's L conversion (<see cref="Upscaling.PillowLuma"/>), in place, written to R, G and B.</summary>
    public static void ToGrayscale(Span<byte> rgb)
    {
        for (int i = 0; i + 2 < rgb.Length; i += 3)
            rgb[i] = rgb[i + 1] = rgb[i + 2] = Upscaling.PillowLuma.Of(rgb[i], rgb[i + 1], rgb[i + 2]);
    }

    /// <summary>"0042_red-apple": the list position (keeps CLDR order when sorted) and the name in ASCII.</summary>
    public static string FileStem(int index, string name)
    {
        var slug = new StringBuilder();
        foreach (var raw in name.ToLowerInvariant())
        {
            // The process runs with invariant globalization (no Normalize): fold the accented letters by table.
            int accent = AccentedLetters.IndexOf(raw);
            var c = accent >= 0 ? PlainLetters[accent] : raw;
            if (c is >= 'a' and <= 'z' or >= '0' and <= '9') slug.Append(c);
            else if (c is '’' or '\'') continue; // o’clock → oclock
            else if (slug.Length > 0 && slug[^1] != '-') slug.Append('-');
        }
        var text = slug.ToString().Trim('-');
        if (text.Length > 60) text = text[..60].TrimEnd('-');
        return index.ToString("D4", CultureInfo.InvariantCulture) + "_" + (text.Length > 0 ? text : "emoji");
    }

    private static void WriteTextAtomically(string path, string text)
    {
        var temp = Path.Combine(Path.GetDirectoryName(path)!, "." + Path.GetFileName(path) + ".tmp");
        File.WriteAllText(temp, text, new UTF8Encoding(false));
        File.Move(temp, path, overwrite: true);
    }
}
