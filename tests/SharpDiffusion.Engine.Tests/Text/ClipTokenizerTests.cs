using System.Text.Json;
using SharpDiffusion.Engine.Text.Tokenization;

namespace SharpDiffusion.Engine.Tests.Text;

public class ClipTokenizerTests
{
    private static readonly JsonElement Cases = TextGolden.Json("tokenizer_cases.json").GetProperty("cases");

    public static TheoryData<int> CaseIndices()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Cases.GetArrayLength(); i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void EveryGoldenCaseGivesIdenticalIds(int index)
    {
        var c = Cases[index];
        var text = c.GetProperty("text").GetString()!;
        Assert.Equal(c.GetProperty("cleaned_text").GetString(), TextGolden.Tokenizer.Clean(text));
        Assert.Equal(c.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!), TextGolden.Tokenizer.Tokenize(text));
        Assert.Equal(c.GetProperty("ids").EnumerateArray().Select(t => t.GetInt32()), TextGolden.Tokenizer.Encode(text));
    }

    [Fact]
    public void OpenAiGzipVocabularyEqualsHuggingFaceFiles()
    {
        var hf = TextGolden.Vocabulary;
        var openai = TextGolden.OpenAi;
        Assert.Equal(49408, openai.Encoder.Count);
        Assert.Equal(hf.Encoder.Count, openai.Encoder.Count);
        foreach (var (token, id) in hf.Encoder) Assert.Equal(id, openai.Encoder[token]);
        Assert.Equal(hf.MergeRanks.Count, openai.MergeRanks.Count);
        var tokenizer = new ClipTokenizer(openai);
        foreach (var c in Cases.EnumerateArray())
            Assert.Equal(c.GetProperty("ids").EnumerateArray().Select(t => t.GetInt32()), tokenizer.Encode(c.GetProperty("text").GetString()!));
    }

    [Fact]
    public void SpecialTokenIdsAndSpecialLiterals()
    {
        Assert.Equal(ClipTokenizer.StartOfTextId, TextGolden.Tokenizer.BosId);
        Assert.Equal(ClipTokenizer.EndOfTextId, TextGolden.Tokenizer.EosId);
        Assert.Equal(new[] { 320, 49407, 321 }, TextGolden.Tokenizer.Encode("a <|endoftext|> b"));
        Assert.Equal(267, TextGolden.Vocabulary.Encoder[",</w>"]);
    }

    [Fact]
    public void HtmlUnescapingCanBeTurnedOffAsTransformersDoes()
    {
        Assert.Equal("tom & jerry", TextGolden.Tokenizer.Clean("Tom &amp; Jerry"));
        Assert.Equal("tom &amp; jerry", TextGolden.HfTokenizer.Clean("Tom &amp; Jerry"));
    }

    [Fact]
    public void PreTokenizerSplitsDigitsContractionsAndPunctuationRuns()
    {
        Assert.Equal(new[] { "1", "2", "3", "abc" }, ClipTokenizer.PreTokenize("123abc"));
        Assert.Equal(new[] { "don", "'t", "rock", "'", "n", "'", "roll" }, ClipTokenizer.PreTokenize("don't rock'n'roll"));
        Assert.Equal(new[] { "!!!???...", "<|endoftext|>", "a" }, ClipTokenizer.PreTokenize("!!!???... <|endoftext|>a"));
        // A letter outside the BMP (U+1D400 MATHEMATICAL BOLD CAPITAL A) is a letter, as in Python.
        Assert.Equal(new[] { "x\U0001D400y" }, ClipTokenizer.PreTokenize("x\U0001D400y"));
    }

    [Fact]
    public void BrokenVocabularyFilesGiveAClearError()
    {
        using var dir = new TempDir();
        var vocab = Path.Combine(dir.Path, "vocab.json");
        File.WriteAllText(vocab, "[1, 2]");
        File.WriteAllText(Path.Combine(dir.Path, "merges.txt"), "#version: 0.2\na b\n");
        var e = Assert.Throws<SharpDiffusion.Formats.InvalidModelFileException>(() => BytePairVocabulary.Load(dir.Path));
        Assert.Contains(vocab, e.Message);
        var gz = Path.Combine(dir.Path, TokenizerLocator.OpenAiFileName);
        File.WriteAllText(gz, "not gzip");
        Assert.Throws<SharpDiffusion.Formats.InvalidModelFileException>(() => BytePairVocabulary.FromOpenAi(gz));
    }
}
