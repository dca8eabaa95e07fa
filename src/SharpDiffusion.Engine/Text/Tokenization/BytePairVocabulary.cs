using System.IO.Compression;
using System.Text;
using System.Text.Json;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Text.Tokenization;

/// <summary>A CLIP BPE vocabulary: token → id and merge pair → rank.</summary>
public sealed class BytePairVocabulary
{
    /// <summary>Merges CLIP uses: openai reads <c>lines[1 : 49152-256-2+1]</c> of its merge file.</summary>
    public const int ClipMergeCount = 49152 - 256 - 2;

    public const string StartOfText = "<|startoftext|>";
    public const string EndOfText = "<|endoftext|>";

    public IReadOnlyDictionary<string, int> Encoder { get; }
    public IReadOnlyDictionary<(string, string), int> MergeRanks { get; }

    /// <summary>Where the vocabulary was read from (for messages).</summary>
    public string Source { get; }

    public BytePairVocabulary(IReadOnlyDictionary<string, int> encoder, IReadOnlyList<(string, string)> merges, string source)
    {
        Encoder = encoder;
        var ranks = new Dictionary<(string, string), int>(merges.Count);
        for (int i = 0; i < merges.Count; i++) ranks.TryAdd(merges[i], i);
        MergeRanks = ranks;
        Source = source;
    }

    /// <summary>Hugging Face layout: <c>vocab.json</c> (token → id) and <c>merges.txt</c> (header line, then merges by rank).</summary>
    public static BytePairVocabulary FromHuggingFace(string vocabJsonPath, string mergesPath)
    {
        Dictionary<string, int>? encoder;
        try
        {
            encoder = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(vocabJsonPath, Encoding.UTF8));
        }
        catch (JsonException e)
        {
            throw new InvalidModelFileException(vocabJsonPath, "not a token → id JSON object: " + e.Message);
        }
        if (encoder == null || encoder.Count == 0) throw new InvalidModelFileException(vocabJsonPath, "empty vocabulary");
        var lines = File.ReadAllLines(mergesPath, Encoding.UTF8);
        var merges = ParseMerges(lines.Skip(lines.Length > 0 && lines[0].StartsWith("#version", StringComparison.Ordinal) ? 1 : 0), mergesPath);
        foreach (var special in new[] { StartOfText, EndOfText })
        {
            if (!encoder.ContainsKey(special)) throw new InvalidModelFileException(vocabJsonPath, $"the vocabulary has no {special} token");
        }
        return new BytePairVocabulary(encoder, merges, vocabJsonPath);
    }

    /// <summary>
    /// openai layout: <c>bpe_simple_vocab_16e6.txt.gz</c> holds only merges; the vocabulary is built from them as
    /// <c>SimpleTokenizer</c> does (256 byte symbols, the same with "&lt;/w&gt;", merged pairs, then the two specials).
    /// </summary>
    public static BytePairVocabulary FromOpenAi(string gzPath)
    {
        using var file = File.OpenRead(gzPath);
        return FromOpenAi(file, gzPath);
    }

    /// <summary>The openai layout from a gzip stream; <paramref name="source"/> names it in messages.</summary>
    public static BytePairVocabulary FromOpenAi(Stream gzip, string source)
    {
        string[] lines;
        try
        {
            using var stream = new GZipStream(gzip, CompressionMode.Decompress, leaveOpen: true);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            lines = reader.ReadToEnd().Split('\n');
        }
        catch (InvalidDataException e)
        {
            throw new InvalidModelFileException(source, "not a gzip file: " + e.Message);
        }
        if (lines.Length < ClipMergeCount + 1) throw new InvalidModelFileException(source, $"expected {ClipMergeCount} merges, found {lines.Length - 1}");
        var merges = ParseMerges(lines.Skip(1).Take(ClipMergeCount), source);
        var byteSymbols = ByteEncoding.Symbols;
        var vocab = new List<string>(byteSymbols.Length * 2 + merges.Count + 2);
        vocab.AddRange(byteSymbols);
        vocab.AddRange(byteSymbols.Select(s => s + "</w>"));
        vocab.AddRange(merges.Select(m => m.Item1 + m.Item2));
        vocab.Add(StartOfText);
        vocab.Add(EndOfText);
        var encoder = new Dictionary<string, int>(vocab.Count);
        for (int i = 0; i < vocab.Count; i++) encoder[vocab[i]] = i;
        return new BytePairVocabulary(encoder, merges, source);
    }

    /// <summary>Reads a vocabulary file or folder: <c>vocab.json</c>+<c>merges.txt</c>, or <c>bpe_simple_vocab_16e6.txt.gz</c>.</summary>
    public static BytePairVocabulary Load(string path)
    {
        if (Directory.Exists(path))
        {
            var vocab = Path.Combine(path, "vocab.json");
            var merges = Path.Combine(path, "merges.txt");
            if (File.Exists(vocab) && File.Exists(merges)) return FromHuggingFace(vocab, merges);
            var gz = Path.Combine(path, TokenizerLocator.OpenAiFileName);
            if (File.Exists(gz)) return FromOpenAi(gz);
            throw new InvalidModelFileException(path, $"folder has neither vocab.json + merges.txt nor {TokenizerLocator.OpenAiFileName}");
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: tokenizer vocabulary not found", path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) return FromOpenAi(path);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (Path.GetFileName(path).Equals("merges.txt", StringComparison.Ordinal)) return FromHuggingFace(Path.Combine(dir, "vocab.json"), path);
        var mergesBeside = Path.Combine(dir, "merges.txt");
        if (!File.Exists(mergesBeside)) throw new InvalidModelFileException(path, "no merges.txt beside this vocabulary file");
        return FromHuggingFace(path, mergesBeside);
    }

    private static List<(string, string)> ParseMerges(IEnumerable<string> lines, string path)
    {
        var merges = new List<(string, string)>();
        int lineNo = 1;
        foreach (var raw in lines)
        {
            lineNo++;
            var line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2) throw new InvalidModelFileException(path, $"line {lineNo} is not a merge pair: \"{line}\"");
            merges.Add((parts[0], parts[1]));
        }
        return merges;
    }
}
