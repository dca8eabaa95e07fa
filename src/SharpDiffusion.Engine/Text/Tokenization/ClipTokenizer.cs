using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace SharpDiffusion.Engine.Text.Tokenization;

/// <summary>
/// CLIP's byte-level BPE tokenizer, identical in output to openai's <c>SimpleTokenizer.encode</c>: clean-up
/// (NFC, html-unescape twice, whitespace collapse, lower case), the CLIP pre-tokenizer, byte symbols, BPE by merge rank.
/// </summary>
public sealed class ClipTokenizer
{
    public const int StartOfTextId = 49406;
    public const int EndOfTextId = 49407;

    private readonly BytePairVocabulary _vocabulary;
    private readonly ConcurrentDictionary<string, string[]> _cache = new(StringComparer.Ordinal);

    /// <param name="vocabulary">The BPE vocabulary.</param>
    /// <param name="htmlUnescape">
    /// openai's tokenizer html-unescapes twice (true); transformers' <c>CLIPTokenizer</c>, which A1111 uses, does not.
    /// </param>
    public ClipTokenizer(BytePairVocabulary vocabulary, bool htmlUnescape = true)
    {
        _vocabulary = vocabulary;
        HtmlUnescape = htmlUnescape;
        BosId = vocabulary.Encoder[BytePairVocabulary.StartOfText];
        EosId = vocabulary.Encoder[BytePairVocabulary.EndOfText];
    }

    public bool HtmlUnescape { get; }
    public int BosId { get; }
    public int EosId { get; }
    public BytePairVocabulary Vocabulary => _vocabulary;

    /// <summary>Loads the vocabulary found by <see cref="TokenizerLocator"/>.</summary>
    public static ClipTokenizer Load(string path, bool htmlUnescape = true) => new(BytePairVocabulary.Load(path), htmlUnescape);

    /// <summary>The clean-up before pre-tokenizing: <c>whitespace_clean(basic_clean(text)).lower()</c>.</summary>
    public string Clean(string text)
    {
        text = PythonText.NormalizeNfc(text); // ftfy.fix_text's last step; the rest of ftfy only repairs mojibake
        if (HtmlUnescape) text = PythonText.HtmlUnescape(PythonText.HtmlUnescape(text));
        text = PythonText.Strip(text);
        text = PythonText.CollapseWhitespace(text);
        return PythonText.Lower(text);
    }

    /// <summary>Token ids without BOS/EOS and without truncation.</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        var ids = new List<int>();
        foreach (var token in Tokenize(text))
        {
            if (!_vocabulary.Encoder.TryGetValue(token, out var id))
                throw new InvalidOperationException($"{_vocabulary.Source}: the vocabulary has no token \"{token}\" although its merges produce it");
            ids.Add(id);
        }
        return ids;
    }

    /// <summary>The BPE token strings (byte symbols, "&lt;/w&gt;" ending a word).</summary>
    public IReadOnlyList<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        foreach (var piece in PreTokenize(Clean(text))) tokens.AddRange(Bpe(piece));
        return tokens;
    }

    /// <summary>
    /// The CLIP pre-tokenizer regex, applied left to right with its alternatives in order:
    /// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>.
    /// Scans code points (not UTF-16 units) so letters outside the BMP count as letters, as in Python.
    /// </summary>
    internal static List<string> PreTokenize(string text)
    {
        var pieces = new List<string>();
        int i = 0;
        while (i < text.Length)
        {
            var kind = Classify(text, i, out int width);
            if (kind == CharKind.Space)
            {
                i += width;
                continue;
            }
            int matched = MatchSpecialOrContraction(text, i);
            if (matched == 0)
            {
                matched = width;
                if (kind != CharKind.Number)
                {
                    // A run of the same class (letters, or "other" = neither space, letter nor number).
                    while (i + matched < text.Length && Classify(text, i + matched, out int w) == kind) matched += w;
                }
            }
            pieces.Add(text.Substring(i, matched));
            i += matched;
        }
        return pieces;
    }

    private static readonly string[] LeadingAlternatives =
        { "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };

    private static int MatchSpecialOrContraction(string text, int i)
    {
        foreach (var alt in LeadingAlternatives)
        {
            // The regex is case-insensitive; the text is lower-cased already, but keep the flag's meaning.
            if (i + alt.Length <= text.Length && string.Compare(text, i, alt, 0, alt.Length, StringComparison.OrdinalIgnoreCase) == 0)
                return alt.Length;
        }
        return 0;
    }

    private enum CharKind { Space, Letter, Number, Other }

    private static CharKind Classify(string text, int i, out int width)
    {
        int cp = CodePointAt(text, i, out width);
        if (PythonText.IsRegexSpace(cp)) return CharKind.Space;
        return CharUnicodeInfo.GetUnicodeCategory(cp) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharKind.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharKind.Number,
            _ => CharKind.Other,
        };
    }

    /// <summary>The code point at <paramref name="i"/>; a lone surrogate counts as itself.</summary>
    private static int CodePointAt(string text, int i, out int width)
    {
        if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
        {
            width = 2;
            return char.ConvertToUtf32(text[i], text[i + 1]);
        }
        width = 1;
        return text[i];
    }

    private string[] Bpe(string piece)
    {
        if (piece is BytePairVocabulary.StartOfText or BytePairVocabulary.EndOfText) return new[] { piece };
        return _cache.GetOrAdd(piece, p => MergeWord(ToByteSymbols(p)));
    }

    private static List<string> ToByteSymbols(string piece)
    {
        var symbols = new List<string>();
        foreach (var b in Encoding.UTF8.GetBytes(piece)) symbols.Add(ByteEncoding.ByteToSymbol[b]);
        symbols[^1] += "</w>";
        return symbols;
    }

    /// <summary>openai's <c>bpe</c>: repeatedly merge every occurrence of the lowest-ranked adjacent pair.</summary>
    private string[] MergeWord(List<string> word)
    {
        var ranks = _vocabulary.MergeRanks;
        while (word.Count > 1)
        {
            int bestRank = int.MaxValue;
            (string, string) best = default;
            for (int i = 0; i < word.Count - 1; i++)
            {
                if (ranks.TryGetValue((word[i], word[i + 1]), out int rank) && rank < bestRank)
                {
                    bestRank = rank;
                    best = (word[i], word[i + 1]);
                }
            }
            if (bestRank == int.MaxValue) break;
            var merged = new List<string>(word.Count);
            for (int i = 0; i < word.Count; i++)
            {
                if (i < word.Count - 1 && word[i] == best.Item1 && word[i + 1] == best.Item2)
                {
                    merged.Add(best.Item1 + best.Item2);
                    i++;
                }
                else merged.Add(word[i]);
            }
            word = merged;
        }
        return word.ToArray();
    }
}
