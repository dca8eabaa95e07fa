using System.Globalization;
using System.Text;
using System.Xml.Linq;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Datasets.Emoji;

/// <summary>
/// The emoji list of the dataset: read from Unicode's <c>emoji-test.txt</c> (Debian: unicode-data) plus CLDR
/// annotations, and kept in the repository as a tab-separated caption list (<c>data/emoji/emoji.tsv</c>) so that
/// rebuilding the dataset needs only the font.
/// </summary>
public static class EmojiCatalog
{
    /// <summary>Where Debian's unicode-data package puts emoji-test.txt.</summary>
    public const string SystemEmojiTestPath = "/usr/share/unicode/emoji/emoji-test.txt";

    /// <summary>The caption list in the repository, relative to its root.</summary>
    public const string RepositoryListPath = "data/emoji/emoji.tsv";

    private const string ListHeader = "code_points\tgroup\tsubgroup\tname\tkeywords";

    /// <summary>Fitzpatrick modifiers U+1F3FB..U+1F3FF: their variants repeat an emoji in another skin tone.</summary>
    public static bool IsSkinTone(int codePoint) => codePoint is >= 0x1F3FB and <= 0x1F3FF;

    /// <summary>
    /// The fully-qualified emoji of emoji-test.txt in file (CLDR) order, without skin-tone variants; components,
    /// minimally-qualified and unqualified lines are dropped. Keywords are left empty.
    /// </summary>
    public static List<EmojiEntry> ParseEmojiTest(TextReader reader, string source)
    {
        var entries = new List<EmojiEntry>();
        string group = "", subgroup = "";
        int lineNo = 0;
        for (var line = reader.ReadLine(); line != null; line = reader.ReadLine())
        {
            lineNo++;
            if (line.StartsWith("# group:", StringComparison.Ordinal)) { group = line["# group:".Length..].Trim(); continue; }
            if (line.StartsWith("# subgroup:", StringComparison.Ordinal)) { subgroup = line["# subgroup:".Length..].Trim(); continue; }
            if (line.Length == 0 || line[0] == '#') continue;
            // "1F600 ; fully-qualified # 😀 E1.0 grinning face"
            int semicolon = line.IndexOf(';'), hash = line.IndexOf('#');
            if (semicolon < 0 || hash < semicolon) throw new InvalidModelFileException(source, $"line {lineNo} is not 'code points ; status # emoji version name': \"{line}\"");
            if (line[(semicolon + 1)..hash].Trim() != "fully-qualified") continue;
            var codePoints = new List<int>();
            foreach (var hex in line[..semicolon].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!int.TryParse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var cp) || cp > 0x10FFFF)
                    throw new InvalidModelFileException(source, $"line {lineNo}: \"{hex}\" is not a code point");
                codePoints.Add(cp);
            }
            if (codePoints.Any(IsSkinTone)) continue;
            // The comment is "<emoji> E<version> <name>".
            var comment = line[(hash + 1)..].Trim().Split(' ', 3);
            if (comment.Length < 3 || !comment[1].StartsWith('E')) throw new InvalidModelFileException(source, $"line {lineNo}: no 'emoji E<version> name' comment");
            entries.Add(new EmojiEntry(codePoints, group, subgroup, comment[2].Trim(), []));
        }
        return entries;
    }

    /// <summary>Reads emoji-test.txt from a file.</summary>
    /// <exception cref="FileNotFoundException">The file is missing (the message names the Debian package).</exception>
    public static List<EmojiEntry> ReadEmojiTest(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file (Unicode's emoji-test.txt; Debian package unicode-data)", path);
        using var reader = new StreamReader(path, Encoding.UTF8);
        return ParseEmojiTest(reader, path);
    }

    /// <summary>
    /// CLDR keywords by emoji text (FE0F variation selectors removed, as CLDR writes them) from annotation files such as
    /// <c>common/annotations/en.xml</c> and <c>common/annotationsDerived/en.xml</c>; later files add to earlier ones.
    /// </summary>
    public static Dictionary<string, List<string>> ReadCldrKeywords(IEnumerable<string> annotationFiles)
    {
        var keywords = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var file in annotationFiles)
        {
            XDocument doc;
            try
            {
                doc = XDocument.Load(file);
            }
            catch (System.Xml.XmlException e)
            {
                throw new InvalidModelFileException(file, "not an XML file: " + e.Message);
            }
            foreach (var annotation in doc.Descendants("annotation"))
            {
                if (annotation.Attribute("type") != null) continue; // type="tts" is the name, not keywords
                var cp = annotation.Attribute("cp")?.Value;
                if (string.IsNullOrEmpty(cp)) continue;
                var key = WithoutVariationSelectors(cp);
                if (!keywords.TryGetValue(key, out var list)) keywords[key] = list = [];
                foreach (var word in annotation.Value.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                    if (!list.Contains(word)) list.Add(word);
            }
        }
        return keywords;
    }

    /// <summary>The entries with their CLDR keywords attached (entries CLDR does not annotate keep none).</summary>
    public static List<EmojiEntry> WithKeywords(IEnumerable<EmojiEntry> entries, IReadOnlyDictionary<string, List<string>> keywords) =>
        [.. entries.Select(e => keywords.TryGetValue(WithoutVariationSelectors(e.Text), out var k) ? e with { Keywords = k } : e)];

    /// <summary>Writes the caption list (a header comment naming the sources and the Unicode licence, then TSV).</summary>
    public static void WriteList(string path, IReadOnlyList<EmojiEntry> entries, IEnumerable<string> provenance)
    {
        var text = new StringBuilder();
        foreach (var line in provenance) text.Append("# ").Append(line).Append('\n');
        text.Append(ListHeader).Append('\n');
        foreach (var e in entries)
        {
            foreach (var field in new[] { e.Group, e.Subgroup, e.Name }.Concat(e.Keywords))
                if (field.Contains('\t') || field.Contains('\n') || field.Contains('|')) throw new ArgumentException($"{e.Name}: a field holds a tab, newline or '|'");
            text.Append(e.CodePointText).Append('\t').Append(e.Group).Append('\t').Append(e.Subgroup).Append('\t')
                .Append(e.Name).Append('\t').Append(string.Join(" | ", e.Keywords)).Append('\n');
        }
        var full = Path.GetFullPath(path);
        var temp = full + ".tmp";
        File.WriteAllText(temp, text.ToString(), new UTF8Encoding(false));
        File.Move(temp, full, overwrite: true);
    }

    /// <summary>Reads a caption list written by <see cref="WriteList"/>.</summary>
    /// <summary>
    /// The entries whose name matches <paramref name="include"/> (when given) and not <paramref name="exclude"/> (when
    /// given), case-insensitive regexes: how a group is held out of a training set and taught back later.
    /// </summary>
    /// <exception cref="ArgumentException">A pattern is not a valid regex.</exception>
    public static List<EmojiEntry> Select(IEnumerable<EmojiEntry> entries, string? include, string? exclude)
    {
        var including = Pattern(include, "--include");
        var excluding = Pattern(exclude, "--exclude");
        return entries.Where(e => (including == null || including.IsMatch(e.Name)) && (excluding == null || !excluding.IsMatch(e.Name))).ToList();
    }

    private static System.Text.RegularExpressions.Regex? Pattern(string? text, string option)
    {
        if (string.IsNullOrEmpty(text)) return null;
        try { return new System.Text.RegularExpressions.Regex(text, System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant); }
        catch (ArgumentException e) { throw new ArgumentException($"{option} {text}: not a valid regex ({e.Message})"); }
    }

    public static List<EmojiEntry> ReadList(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file (the emoji caption list, {RepositoryListPath} in the repository)", path);
        var entries = new List<EmojiEntry>();
        int lineNo = 0;
        bool header = false;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNo++;
            if (line.Length == 0 || line[0] == '#') continue;
            if (!header)
            {
                if (line != ListHeader) throw new InvalidModelFileException(path, $"line {lineNo}: expected the header \"{ListHeader.Replace("\t", "\\t")}\"");
                header = true;
                continue;
            }
            var fields = line.Split('\t');
            if (fields.Length != 5) throw new InvalidModelFileException(path, $"line {lineNo}: expected 5 tab-separated fields, found {fields.Length}");
            var codePoints = new List<int>();
            foreach (var hex in fields[0].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!int.TryParse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var cp) || cp > 0x10FFFF)
                    throw new InvalidModelFileException(path, $"line {lineNo}: \"{hex}\" is not a code point");
                codePoints.Add(cp);
            }
            if (codePoints.Count == 0 || fields[3].Length == 0) throw new InvalidModelFileException(path, $"line {lineNo}: no code points or no name");
            var keywords = fields[4].Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            entries.Add(new EmojiEntry(codePoints, fields[1], fields[2], fields[3], keywords));
        }
        if (!header) throw new InvalidModelFileException(path, "no header line: not an emoji caption list");
        return entries;
    }

    private static string WithoutVariationSelectors(string text) => text.Replace("\uFE0F", "", StringComparison.Ordinal);
}
