using System.Globalization;
using System.Text;
using SharpDiffusion.Engine.Text.Tokenization;

namespace SharpDiffusion.Engine.Text.Prompts;

/// <summary>
/// AUTOMATIC1111's <c>prompt_parser.parse_prompt_attention</c>: <c>(a)</c> ×1.1, <c>[a]</c> ÷1.1, <c>(a:1.3)</c>,
/// backslash escapes, <c>BREAK</c>, unclosed brackets applied at the end, neighbours with equal weights merged.
/// Weights are doubles multiplied in A1111's order, so results equal Python's bit for bit.
/// </summary>
public static class PromptAttentionParser
{
    private const double RoundMultiplier = 1.1;
    private const double SquareMultiplier = 1 / 1.1;

    public static IReadOnlyList<WeightedText> Parse(string text)
    {
        var res = new List<(string Text, double Weight)>();
        var round = new Stack<int>();
        var square = new Stack<int>();

        void MultiplyRange(int start, double multiplier)
        {
            for (int p = start; p < res.Count; p++) res[p] = (res[p].Text, res[p].Weight * multiplier);
        }

        int i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            if (c == '\\')
            {
                // \( \) \[ \] \\ keep the escaped character; a lone backslash appends "" (it disappears).
                if (i + 1 < text.Length && text[i + 1] is '(' or ')' or '[' or ']' or '\\')
                {
                    res.Add((text[i + 1].ToString(), 1.0));
                    i += 2;
                }
                else
                {
                    res.Add(("", 1.0));
                    i += 1;
                }
                continue;
            }
            if (c == '(') { round.Push(res.Count); i++; continue; }
            if (c == '[') { square.Push(res.Count); i++; continue; }
            if (c == ':')
            {
                int weightEnd = MatchWeight(text, i, out string? number);
                if (weightEnd > 0 && round.Count > 0)
                {
                    MultiplyRange(round.Pop(), ParsePythonFloat(number!, text));
                    i = weightEnd;
                    continue;
                }
                // An unused ":number)" is plain text, as is a lone ":".
                int end = weightEnd > 0 ? weightEnd : i + 1;
                AppendText(res, text[i..end]);
                i = end;
                continue;
            }
            if (c == ')')
            {
                if (round.Count > 0) MultiplyRange(round.Pop(), RoundMultiplier);
                else AppendText(res, ")");
                i++;
                continue;
            }
            if (c == ']')
            {
                if (square.Count > 0) MultiplyRange(square.Pop(), SquareMultiplier);
                else AppendText(res, "]");
                i++;
                continue;
            }
            int runEnd = i;
            while (runEnd < text.Length && text[runEnd] is not ('\\' or '(' or ')' or '[' or ']' or ':')) runEnd++;
            AppendText(res, text[i..runEnd]);
            i = runEnd;
        }

        // Python iterates the remaining stack positions bottom to top.
        foreach (var pos in round.Reverse()) MultiplyRange(pos, RoundMultiplier);
        foreach (var pos in square.Reverse()) MultiplyRange(pos, SquareMultiplier);

        if (res.Count == 0) res.Add(("", 1.0));

        var merged = new List<WeightedText>();
        foreach (var (t, w) in res)
        {
            if (merged.Count > 0 && merged[^1].Weight == w) merged[^1] = merged[^1] with { Text = merged[^1].Text + t };
            else merged.Add(new WeightedText(t, w));
        }
        return merged;
    }

    /// <summary>Matches <c>:\s*([+-]?[.\d]+)\s*\)</c> at <paramref name="start"/>; returns the end index or 0.</summary>
    private static int MatchWeight(string text, int start, out string? number)
    {
        number = null;
        int i = start + 1;
        while (i < text.Length && PythonText.IsPythonSpace(text[i])) i++;
        int numberStart = i;
        if (i < text.Length && text[i] is '+' or '-') i++;
        int digitsStart = i;
        while (i < text.Length && (text[i] == '.' || char.IsDigit(text[i]))) i++;
        if (i == digitsStart) return 0;
        int numberEnd = i;
        while (i < text.Length && PythonText.IsPythonSpace(text[i])) i++;
        if (i >= text.Length || text[i] != ')') return 0;
        number = text[numberStart..numberEnd];
        return i + 1;
    }

    /// <summary>Python <c>float(str)</c> for <c>[+-]?[.\d]+</c>; A1111 fails on e.g. "1.2.3", so this does too, with a clear message.</summary>
    private static double ParsePythonFloat(string number, string prompt)
    {
        var ascii = new StringBuilder(number.Length);
        foreach (var ch in number) ascii.Append(char.IsDigit(ch) ? (char)('0' + (int)char.GetNumericValue(ch)) : ch);
        var s = ascii.ToString();
        var body = s.TrimStart('+', '-');
        if (body.Count(ch => ch == '.') > 1 || body == "." || !double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            throw new FormatException($"prompt attention weight \"{number}\" is not a number in: {prompt}");
        return value;
    }

    private const string BreakWord = "BREAK";

    /// <summary>Plain text, split by <c>\s*\bBREAK\b\s*</c> with ("BREAK", -1) between the parts.</summary>
    private static void AppendText(List<(string, double)> res, string text)
    {
        int pos = 0;
        while (true)
        {
            int found = FindBreak(text, pos, out int matchStart, out int matchEnd);
            if (found < 0)
            {
                res.Add((text[pos..], 1.0));
                return;
            }
            res.Add((text[pos..matchStart], 1.0));
            res.Add((BreakWord, -1));
            pos = matchEnd;
        }
    }

    private static int FindBreak(string text, int from, out int matchStart, out int matchEnd)
    {
        matchStart = matchEnd = -1;
        for (int j = text.IndexOf(BreakWord, from, StringComparison.Ordinal); j >= 0; j = text.IndexOf(BreakWord, j + 1, StringComparison.Ordinal))
        {
            bool boundaryBefore = j == 0 || !IsWordChar(text[j - 1]);
            int after = j + BreakWord.Length;
            bool boundaryAfter = after == text.Length || !IsWordChar(text[after]);
            if (!boundaryBefore || !boundaryAfter) continue;
            matchStart = j;
            while (matchStart > from && PythonText.IsPythonSpace(text[matchStart - 1])) matchStart--;
            matchEnd = after;
            while (matchEnd < text.Length && PythonText.IsPythonSpace(text[matchEnd])) matchEnd++;
            return j;
        }
        return -1;
    }

    /// <summary>Python <c>re</c>'s <c>\w</c> on text: alphanumerics and underscore.</summary>
    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_' || char.IsNumber(c);
}
