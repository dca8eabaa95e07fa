using System.Globalization;
using System.Text;

namespace SharpDiffusion.Engine.Datasets.Emoji;

/// <summary>One fully-qualified emoji of Unicode's emoji-test.txt, with its CLDR keywords (may be empty).</summary>
/// <param name="CodePoints">The code points, as emoji-test.txt lists them.</param>
/// <param name="Group">The emoji-test group, e.g. "Food &amp; Drink".</param>
/// <param name="Subgroup">The emoji-test subgroup, e.g. "food-fruit".</param>
/// <param name="Name">The CLDR short name, e.g. "red apple" (distinct for every entry).</param>
/// <param name="Keywords">CLDR keywords, e.g. "apple", "fruit", "red".</param>
public sealed record EmojiEntry(IReadOnlyList<int> CodePoints, string Group, string Subgroup, string Name, IReadOnlyList<string> Keywords)
{
    /// <summary>The emoji as text (what the font shapes).</summary>
    public string Text
    {
        get
        {
            var text = new StringBuilder();
            foreach (var cp in CodePoints) text.Append(char.ConvertFromUtf32(cp));
            return text.ToString();
        }
    }

    /// <summary>The code points as emoji-test.txt writes them: upper-case hex separated by spaces.</summary>
    public string CodePointText => string.Join(' ', CodePoints.Select(cp => cp.ToString("X4", CultureInfo.InvariantCulture)));
}
