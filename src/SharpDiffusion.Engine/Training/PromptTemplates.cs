namespace SharpDiffusion.Engine.Training;

/// <summary>
/// A1111's textual-inversion prompt templates (textual_inversion_templates/*.txt): one prompt per line, <c>[name]</c>
/// replaced by the embedding's name and <c>[filewords]</c> by the image's caption; each step draws one line at random.
/// The two <c>*_filewords</c> files A1111 ships are built in; any other file can be given by path.
/// </summary>
public static class PromptTemplates
{
    /// <summary>A1111's default in the Train tab.</summary>
    public const string DefaultName = "style_filewords";

    public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> BuiltIn = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal)
    {
        ["style_filewords"] = [.. new[] { "bright", "clean", "close-up", "cool", "cropped", "dark", "dirty", "good", "large", "nice" }
            .Select(w => $"a {w} painting of [filewords], art by [name]"),
            "a painting of [filewords], art by [name]", "a picture of [filewords], art by [name]", "a rendering of [filewords], art by [name]",
            "a rendition of [filewords], art by [name]", "a small painting of [filewords], art by [name]", "a weird painting of [filewords], art by [name]",
            "the painting of [filewords], art by [name]"],
        ["subject_filewords"] = [.. new[]
        {
            "a photo of a [name]", "a rendering of a [name]", "a cropped photo of the [name]", "the photo of a [name]", "a photo of a clean [name]",
            "a photo of a dirty [name]", "a dark photo of the [name]", "a photo of my [name]", "a photo of the cool [name]", "a close-up photo of a [name]",
            "a bright photo of the [name]", "a cropped photo of a [name]", "a photo of the [name]", "a good photo of the [name]", "a photo of one [name]",
            "a close-up photo of the [name]", "a rendition of the [name]", "a photo of the clean [name]", "a rendition of a [name]", "a photo of a nice [name]",
            "a good photo of a [name]", "a photo of the nice [name]", "a photo of the small [name]", "a photo of the weird [name]", "a photo of the large [name]",
            "a photo of a cool [name]", "a photo of a small [name]",
        }.Select(line => line + ", [filewords]")],
    };

    /// <summary>A built-in template by name, or the non-empty lines of a file.</summary>
    /// <exception cref="InvalidDataException">The file is missing or has no lines.</exception>
    public static IReadOnlyList<string> Load(string nameOrPath)
    {
        if (BuiltIn.TryGetValue(nameOrPath, out var lines)) return lines;
        if (!File.Exists(nameOrPath))
            throw new InvalidDataException($"{nameOrPath}: no such template file (built in: {string.Join(", ", BuiltIn.Keys)})");
        var read = File.ReadAllLines(nameOrPath).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        if (read.Count == 0) throw new InvalidDataException($"{nameOrPath}: the template file has no prompts");
        return read;
    }

    /// <summary>
    /// A1111's <c>PersonalizedBase.create_text</c>: a random line; the caption split at commas, each tag dropped with
    /// probability <paramref name="tagDropout"/>, optionally shuffled, joined with "," for <c>[filewords]</c>.
    /// </summary>
    public static string Fill(IReadOnlyList<string> lines, string name, string caption, StepRandom random, bool shuffleTags = false, double tagDropout = 0)
    {
        string line = lines[random.Next(lines.Count)];
        var tags = caption.Split(',').ToList();
        if (tagDropout > 0) tags = tags.Where(_ => random.NextDouble() > tagDropout).ToList();
        if (shuffleTags) random.Shuffle(tags);
        return line.Replace("[filewords]", string.Join(',', tags), StringComparison.Ordinal).Replace("[name]", name, StringComparison.Ordinal);
    }
}
