using System.Text;
using System.Text.Json;

namespace SharpDiffusion.Engine.Text.Tokenization;

/// <summary>
/// Learns a small CLIP-style byte-level BPE vocabulary from a text corpus (a model trained from scratch on a few
/// thousand captions needs a few thousand tokens, not CLIP's 49,408). Same symbols and pre-tokenizer as CLIP, so
/// <see cref="ClipTokenizer"/> runs it unchanged: the 256 byte symbols, the same with "&lt;/w&gt;", the learned merges
/// in rank order, then &lt;|startoftext|&gt; and &lt;|endoftext|&gt;. Every text stays encodable (bytes are always there).
/// Merges are learned as in Sennrich et al.: repeatedly merge the most frequent adjacent pair (ties: ordinal order,
/// so the result is a function of the corpus alone).
/// </summary>
public static class BytePairVocabularyFitter
{
    /// <summary>Token rows without merges: the byte symbols, plain and word-final, and the two specials.</summary>
    public const int MinimumSize = 2 * 256 + 2;

    public static BytePairVocabulary Fit(IEnumerable<string> texts, int vocabularySize, string source = "fitted vocabulary")
    {
        if (vocabularySize < MinimumSize) throw new ArgumentException($"a vocabulary needs at least {MinimumSize} tokens (bytes and specials), not {vocabularySize}");
        // Clean-up as the tokenizer will do it at run time (transformers' CLIPTokenizer: no html unescape).
        var cleaner = new ClipTokenizer(TokenizerLocator.BuiltIn, htmlUnescape: false);
        var wordCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var text in texts)
        {
            foreach (var piece in ClipTokenizer.PreTokenize(cleaner.Clean(text)))
                wordCounts[piece] = wordCounts.GetValueOrDefault(piece) + 1;
        }

        var words = wordCounts.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (Symbols: Symbolize(p.Key), Count: p.Value)).ToList();
        var merges = new List<(string, string)>();
        int wanted = vocabularySize - MinimumSize;
        while (merges.Count < wanted)
        {
            var pairCounts = new Dictionary<(string, string), long>();
            foreach (var (symbols, count) in words)
                for (int i = 0; i + 1 < symbols.Count; i++)
                    pairCounts[(symbols[i], symbols[i + 1])] = pairCounts.GetValueOrDefault((symbols[i], symbols[i + 1])) + count;
            if (pairCounts.Count == 0) break; // every word is one token already
            var best = pairCounts.OrderByDescending(p => p.Value).ThenBy(p => p.Key.Item1, StringComparer.Ordinal)
                .ThenBy(p => p.Key.Item2, StringComparer.Ordinal).First().Key;
            merges.Add(best);
            string joined = best.Item1 + best.Item2;
            foreach (var (symbols, _) in words)
            {
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    if (symbols[i] != best.Item1 || symbols[i + 1] != best.Item2) continue;
                    symbols[i] = joined;
                    symbols.RemoveAt(i + 1);
                }
            }
        }

        var tokens = new List<string>(MinimumSize + merges.Count);
        tokens.AddRange(ByteEncoding.Symbols);
        tokens.AddRange(ByteEncoding.Symbols.Select(s => s + "</w>"));
        tokens.AddRange(merges.Select(m => m.Item1 + m.Item2));
        tokens.Add(BytePairVocabulary.StartOfText);
        tokens.Add(BytePairVocabulary.EndOfText);
        var encoder = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        foreach (var token in tokens) encoder.TryAdd(token, encoder.Count);
        return new BytePairVocabulary(encoder, merges, source);
    }

    /// <summary>Writes the Hugging Face layout (<c>vocab.json</c>, <c>merges.txt</c>) into <paramref name="folder"/>.</summary>
    public static void Write(BytePairVocabulary vocabulary, string folder)
    {
        Directory.CreateDirectory(folder);
        var ordered = vocabulary.Encoder.OrderBy(p => p.Value).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        AtomicText(Path.Combine(folder, "vocab.json"), JsonSerializer.Serialize(ordered));
        var merges = new StringBuilder("#version: 0.2\n");
        foreach (var (left, right) in vocabulary.MergeRanks.OrderBy(p => p.Value).Select(p => p.Key)) merges.Append(left).Append(' ').Append(right).Append('\n');
        AtomicText(Path.Combine(folder, "merges.txt"), merges.ToString());
    }

    private static void AtomicText(string path, string text)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, text, new UTF8Encoding(false));
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>A pre-tokenized word as byte symbols, the last one marked word-final (as CLIP's <c>bpe</c> starts).</summary>
    private static List<string> Symbolize(string word)
    {
        var bytes = Encoding.UTF8.GetBytes(word);
        var symbols = bytes.Select(b => ByteEncoding.ByteToSymbol[b]).ToList();
        symbols[^1] += "</w>";
        return symbols;
    }
}
