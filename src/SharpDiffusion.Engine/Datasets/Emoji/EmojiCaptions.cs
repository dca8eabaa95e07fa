using System.Text.RegularExpressions;

namespace SharpDiffusion.Engine.Datasets.Emoji;

/// <summary>
/// Captions of one emoji: its CLDR name first (kohya reads only the first line of a caption file), then variants a
/// trainer may pick from: a sentence ("an emoji of a red apple"), "red apple emoji", and the name with its keywords.
/// </summary>
public static class EmojiCaptions
{
    // Names whose head word is already plural take no article ("an emoji of people holding hands").
    private static readonly HashSet<string> PluralHeads = new(StringComparer.Ordinal) { "people", "men", "women" };

    public static IReadOnlyList<string> For(EmojiEntry entry)
    {
        var name = entry.Name;
        var captions = new List<string> { name, "an emoji of " + NounPhrase(name), Phrase(name) + " emoji" };
        // Keywords that only repeat words of the name add nothing ("family: man, woman" has "man", "woman").
        var nameWords = Words(name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var keywords = entry.Keywords.Where(k => !Words(k).All(nameWords.Contains)).ToList();
        if (keywords.Count > 0) captions.Add(Phrase(name) + ", " + string.Join(", ", keywords));
        return captions.Distinct(StringComparer.Ordinal).ToList();
    }

    private static IEnumerable<string> Words(string text) =>
        Regex.Split(text, @"[^\p{L}\p{N}’']+").Where(w => w.Length > 0);

    /// <summary>"flag: Japan" → "the flag of Japan"; "man: red hair" → "a man, red hair"; "apple" → "an apple".</summary>
    private static string NounPhrase(string name)
    {
        if (name.StartsWith("flag: ", StringComparison.Ordinal)) return "the flag of " + name["flag: ".Length..];
        var phrase = Phrase(name);
        var first = phrase.Split(' ')[0];
        if (PluralHeads.Contains(first) || !char.IsLetter(phrase[0])) return phrase;
        return ("aeiou".Contains(char.ToLowerInvariant(phrase[0])) ? "an " : "a ") + phrase;
    }

    /// <summary>The name as running text: "keycap: 1" → "keycap 1", "man: red hair" → "man, red hair".</summary>
    private static string Phrase(string name) =>
        name.StartsWith("keycap: ", StringComparison.Ordinal) ? "keycap " + name["keycap: ".Length..] : name.Replace(": ", ", ", StringComparison.Ordinal);
}
