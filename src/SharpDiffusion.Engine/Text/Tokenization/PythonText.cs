using System.Globalization;
using System.Text;

namespace SharpDiffusion.Engine.Text.Tokenization;

/// <summary>
/// Python string operations the CLIP tokenizer's clean-up uses (<c>unicodedata.normalize("NFC")</c>,
/// <c>html.unescape</c>, <c>str.lower()</c>, <c>str.strip()</c>, regex <c>\s</c>), reproduced from CPython's tables
/// because .NET's equivalents differ (HtmlDecode ignores "&amp;amp" without ";", invariant globalization does not compose).
/// </summary>
internal static class PythonText
{
    private static readonly Dictionary<int, int[]> Decompositions = ParseCodePointLists(PythonUnicodeData.CanonicalDecompositions);
    private static readonly Dictionary<int, int[]> LowerMap = ParseCodePointLists(PythonUnicodeData.Lowercase);
    private static readonly Dictionary<int, int> CombiningClass = ParseClasses(PythonUnicodeData.CombiningClasses);
    private static readonly Dictionary<(int, int), int> Compositions = BuildCompositions();
    private static readonly Dictionary<string, string> HtmlEntities = ParseEntities(PythonUnicodeData.Html5Entities);

    private const int HangulSBase = 0xAC00, HangulLBase = 0x1100, HangulVBase = 0x1161, HangulTBase = 0x11A7;
    private const int HangulLCount = 19, HangulVCount = 21, HangulTCount = 28;
    private const int HangulNCount = HangulVCount * HangulTCount, HangulSCount = HangulLCount * HangulNCount;

    /// <summary><c>unicodedata.normalize("NFC", text)</c>: canonical decomposition, canonical ordering, composition.</summary>
    public static string NormalizeNfc(string text)
    {
        if (IsAscii(text)) return text;
        var decomposed = new List<int>(text.Length);
        foreach (var rune in text.EnumerateRunes()) Decompose(rune.Value, decomposed);
        SortCombiningMarks(decomposed);
        return ToText(Compose(decomposed));
    }

    /// <summary>Python <c>str.lower()</c>: full lower-case mapping (U+0130 becomes two code points) and the final-sigma rule.</summary>
    public static string Lower(string text)
    {
        var runes = text.EnumerateRunes().Select(r => r.Value).ToArray();
        var sb = new StringBuilder(text.Length);
        for (int i = 0; i < runes.Length; i++)
        {
            int c = runes[i];
            if (c == 0x3A3) sb.Append(IsFinalSigma(runes, i) ? 'ς' : 'σ');
            else if (LowerMap.TryGetValue(c, out var lower)) foreach (var l in lower) sb.Append(char.ConvertFromUtf32(l));
            else sb.Append(char.ConvertFromUtf32(c));
        }
        return sb.ToString();
    }

    /// <summary>Python <c>str.isspace()</c> for one code point (includes U+001C..U+001F, unlike .NET).</summary>
    public static bool IsPythonSpace(int c) => c is >= 0x1C and <= 0x1F || IsRegexSpace(c);

    /// <summary>The regex class <c>\s</c> on Unicode text: the White_Space property.</summary>
    public static bool IsRegexSpace(int c) =>
        c is (>= 0x09 and <= 0x0D) or 0x20 or 0x85 or 0xA0 or 0x1680 or (>= 0x2000 and <= 0x200A)
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    /// <summary>Python <c>str.strip()</c>.</summary>
    public static string Strip(string text)
    {
        int start = 0, end = text.Length;
        while (start < end && IsPythonSpace(text[start])) start++;
        while (end > start && IsPythonSpace(text[end - 1])) end--;
        return text[start..end];
    }

    /// <summary><c>re.sub(r"\s+", " ", text).strip()</c> (the tokenizer's <c>whitespace_clean</c>).</summary>
    public static string CollapseWhitespace(string text)
    {
        var sb = new StringBuilder(text.Length);
        bool inSpace = false;
        foreach (var ch in text)
        {
            if (IsRegexSpace(ch))
            {
                if (!inSpace) sb.Append(' ');
                inSpace = true;
            }
            else
            {
                sb.Append(ch);
                inSpace = false;
            }
        }
        return Strip(sb.ToString());
    }

    /// <summary>
    /// Python <c>html.unescape</c>: named references from the HTML5 table (the legacy ones also without ";",
    /// longest prefix wins), decimal and hexadecimal references with the HTML5 replacements for invalid numbers.
    /// </summary>
    public static string HtmlUnescape(string text)
    {
        if (!text.Contains('&')) return text;
        var sb = new StringBuilder(text.Length);
        int i = 0;
        while (i < text.Length)
        {
            int amp = text.IndexOf('&', i);
            if (amp < 0)
            {
                sb.Append(text, i, text.Length - i);
                break;
            }
            sb.Append(text, i, amp - i);
            int consumed = TryReplaceReference(text, amp + 1, sb);
            if (consumed == 0)
            {
                sb.Append('&');
                i = amp + 1;
            }
            else i = amp + 1 + consumed;
        }
        return sb.ToString();
    }

    /// <summary>Matches <c>#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f &lt;&amp;#;]{1,32};?</c> at <paramref name="pos"/>; returns the characters consumed after "&amp;" (0 = no match).</summary>
    private static int TryReplaceReference(string text, int pos, StringBuilder sb)
    {
        if (pos >= text.Length) return 0;
        if (text[pos] == '#')
        {
            bool hex = pos + 1 < text.Length && (text[pos + 1] == 'x' || text[pos + 1] == 'X');
            int digitsStart = pos + (hex ? 2 : 1);
            int end = digitsStart;
            while (end < text.Length && (hex ? char.IsAsciiHexDigit(text[end]) : char.IsAsciiDigit(text[end]))) end++;
            if (end == digitsStart)
            {
                // "&#x" without hex digits: Python's regex falls back to nothing ("#" is excluded from names).
                return 0;
            }
            AppendNumericReference(text.AsSpan(digitsStart, end - digitsStart), hex, sb);
            if (end < text.Length && text[end] == ';') end++;
            return end - pos;
        }

        int nameEnd = pos;
        while (nameEnd < text.Length && nameEnd - pos < 32 && text[nameEnd] is not ('\t' or '\n' or '\f' or ' ' or '<' or '&' or '#' or ';'))
            nameEnd++;
        if (nameEnd == pos) return 0;
        if (nameEnd < text.Length && text[nameEnd] == ';') nameEnd++;
        string name = text[pos..nameEnd];
        if (HtmlEntities.TryGetValue(name, out var value))
        {
            sb.Append(value);
            return name.Length;
        }
        for (int x = name.Length - 1; x > 1; x--)
        {
            if (HtmlEntities.TryGetValue(name[..x], out var prefixValue))
            {
                sb.Append(prefixValue).Append(name, x, name.Length - x);
                return name.Length;
            }
        }
        sb.Append('&').Append(name);
        return name.Length;
    }

    private static void AppendNumericReference(ReadOnlySpan<char> digits, bool hex, StringBuilder sb)
    {
        long num = 0;
        foreach (var d in digits)
        {
            int v = hex ? Convert.ToInt32(d.ToString(), 16) : d - '0';
            num = num * (hex ? 16 : 10) + v;
            if (num > 0x10FFFF) num = 0x110000; // saturate: any larger value is out of range too
        }
        string? invalid = InvalidCharRef(num);
        if (invalid != null) sb.Append(invalid);
        else if (num is >= 0xD800 and <= 0xDFFF or > 0x10FFFF) sb.Append('\uFFFD');
        else if (IsInvalidCodePoint((int)num)) { }
        else sb.Append(char.ConvertFromUtf32((int)num));
    }

    /// <summary>html._invalid_charrefs: NUL, CR and the Windows-1252 interpretation of 0x80..0x9F.</summary>
    private static string? InvalidCharRef(long num) => num switch
    {
        0 => "\uFFFD",
        0x0D => "\r",
        >= 0x80 and <= 0x9F => Windows1252High[(int)num - 0x80].ToString(),
        _ => null,
    };

    private const string Windows1252High =
        "\u20AC\u0081\u201A\u0192\u201E\u2026\u2020\u2021\u02C6\u2030\u0160\u2039\u0152\u008D\u017D\u008F"
        + "\u0090\u2018\u2019\u201C\u201D\u2022\u2013\u2014\u02DC\u2122\u0161\u203A\u0153\u009D\u017E\u0178";

    /// <summary>html._invalid_codepoints: control characters and non-characters, replaced by nothing.</summary>
    private static bool IsInvalidCodePoint(int c) =>
        c is (>= 0x1 and <= 0x8) or 0xB or (>= 0xE and <= 0x1F) or (>= 0x7F and <= 0x9F) or (>= 0xFDD0 and <= 0xFDEF)
        || (c & 0xFFFE) == 0xFFFE;

    private static bool IsFinalSigma(int[] runes, int index)
    {
        // Unicode Final_Sigma: preceded by a cased letter and not followed by one (case-ignorable characters skipped).
        int j = index - 1;
        while (j >= 0 && IsCaseIgnorable(runes[j])) j--;
        if (j < 0 || !IsCased(runes[j])) return false;
        j = index + 1;
        while (j < runes.Length && IsCaseIgnorable(runes[j])) j++;
        return j == runes.Length || !IsCased(runes[j]);
    }

    private static bool IsCased(int c) =>
        CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
            or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(int c) =>
        c is '\'' or '.' or ':' or '^' or '`' or 0xB7 or 0x2019
        || CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;

    private static void Decompose(int c, List<int> output)
    {
        if (c >= HangulSBase && c < HangulSBase + HangulSCount)
        {
            int s = c - HangulSBase;
            output.Add(HangulLBase + s / HangulNCount);
            output.Add(HangulVBase + s % HangulNCount / HangulTCount);
            if (s % HangulTCount != 0) output.Add(HangulTBase + s % HangulTCount);
            return;
        }
        if (Decompositions.TryGetValue(c, out var parts))
        {
            foreach (var p in parts) Decompose(p, output);
            return;
        }
        output.Add(c);
    }

    private static int Ccc(int c) => CombiningClass.TryGetValue(c, out var k) ? k : 0;

    /// <summary>Canonical ordering: stable sort of each run of non-starters by combining class.</summary>
    private static void SortCombiningMarks(List<int> cps)
    {
        for (int i = 1; i < cps.Count; i++)
        {
            int k = Ccc(cps[i]);
            if (k == 0) continue;
            int j = i;
            while (j > 0 && Ccc(cps[j - 1]) > k)
            {
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
                j--;
            }
        }
    }

    /// <summary>Canonical composition (the algorithm of UAX #15's reference code).</summary>
    private static List<int> Compose(List<int> cps)
    {
        var result = new List<int>(cps.Count);
        if (cps.Count == 0) return result;
        int starterPos = 0;
        int lastClass = Ccc(cps[0]) == 0 ? 0 : 256; // a leading non-starter cannot compose with anything
        result.Add(cps[0]);
        for (int i = 1; i < cps.Count; i++)
        {
            int c = cps[i];
            int k = Ccc(c);
            if ((lastClass < k || lastClass == 0) && TryCompose(result[starterPos], c, out var composed))
            {
                result[starterPos] = composed;
                continue;
            }
            if (k == 0) starterPos = result.Count;
            lastClass = k;
            result.Add(c);
        }
        return result;
    }

    private static bool TryCompose(int first, int second, out int composed)
    {
        if (first >= HangulLBase && first < HangulLBase + HangulLCount && second >= HangulVBase && second < HangulVBase + HangulVCount)
        {
            composed = HangulSBase + ((first - HangulLBase) * HangulVCount + (second - HangulVBase)) * HangulTCount;
            return true;
        }
        if (first >= HangulSBase && first < HangulSBase + HangulSCount && (first - HangulSBase) % HangulTCount == 0
            && second > HangulTBase && second < HangulTBase + HangulTCount)
        {
            composed = first + (second - HangulTBase);
            return true;
        }
        return Compositions.TryGetValue((first, second), out composed);
    }

    private static bool IsAscii(string s)
    {
        foreach (var ch in s) if (ch > 0x7F) return false;
        return true;
    }

    private static string ToText(List<int> cps)
    {
        var sb = new StringBuilder(cps.Count);
        foreach (var c in cps) sb.Append(char.ConvertFromUtf32(c));
        return sb.ToString();
    }

    private static Dictionary<int, int[]> ParseCodePointLists(string table)
    {
        var map = new Dictionary<int, int[]>();
        foreach (var entry in table.Split(';'))
        {
            int eq = entry.IndexOf('=');
            map[Hex(entry[..eq])] = entry[(eq + 1)..].Split(' ').Select(Hex).ToArray();
        }
        return map;
    }

    private static Dictionary<int, int> ParseClasses(string table)
    {
        var map = new Dictionary<int, int>();
        foreach (var entry in table.Split(';'))
        {
            int eq = entry.IndexOf('=');
            map[Hex(entry[..eq])] = int.Parse(entry[(eq + 1)..], CultureInfo.InvariantCulture);
        }
        return map;
    }

    private static Dictionary<(int, int), int> BuildCompositions()
    {
        var map = new Dictionary<(int, int), int>();
        foreach (var hex in PythonUnicodeData.PrimaryComposites.Split(';'))
        {
            int c = Hex(hex);
            var parts = Decompositions[c];
            map[(parts[0], parts[1])] = c;
        }
        return map;
    }

    private static Dictionary<string, string> ParseEntities(string table)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in table.Split('\u0001'))
        {
            int tab = entry.IndexOf('\t');
            map[entry[..tab]] = entry[(tab + 1)..];
        }
        return map;
    }

    private static int Hex(string s) => int.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
