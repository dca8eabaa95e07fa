using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Text.Tokenization;
using SharpDiffusion.Formats;
using SharpDiffusion.Png;

namespace SharpDiffusion.Engine.Tests.Text;

/// <summary>The CLIP vocabulary built into the engine: the last fallback of <see cref="TokenizerLocator"/>.</summary>
public class BuiltInVocabularyTests
{
    /// <summary>A locator that sees no environment and an empty home: only the built-in vocabulary is left.</summary>
    private static TokenizerLocator Isolated(TempDir dir) => new(_ => null, dir.File("home"));

    [Fact]
    public void EveryGoldenTokenizerCaseGivesOpenAisIdsWithTheBuiltInVocabularyAlone()
    {
        using var dir = new TempDir();
        var tokenizer = Isolated(dir).LoadTokenizer();
        Assert.Equal(TokenizerLocator.BuiltInSource, tokenizer.Vocabulary.Source);
        var cases = TextGolden.Json("tokenizer_cases.json").GetProperty("cases").EnumerateArray().ToList();
        Assert.Equal(62, cases.Count);
        foreach (var c in cases)
        {
            var text = c.GetProperty("text").GetString()!;
            Assert.Equal(c.GetProperty("ids").EnumerateArray().Select(t => t.GetInt32()), tokenizer.Encode(text));
        }
    }

    [Fact]
    public void TheBuiltInVocabularyIsTheGoldenOne()
    {
        var builtIn = TokenizerLocator.BuiltIn;
        Assert.Equal(TokenizerLocator.BuiltInVocabularySize, builtIn.Encoder.Count);
        Assert.Equal(TextGolden.Vocabulary.Encoder.OrderBy(kv => kv.Value), builtIn.Encoder.OrderBy(kv => kv.Value));
        Assert.Equal(TextGolden.Vocabulary.MergeRanks.OrderBy(kv => kv.Value), builtIn.MergeRanks.OrderBy(kv => kv.Value));
        Assert.True(File.Exists(Path.Combine(TestPaths.RepoRoot, "src", "SharpDiffusion.Engine", "Text", "Tokenization", "Vocabulary", "LICENSE-openai-CLIP.txt")));
    }

    [Fact]
    public void AVocabularyOnDiskStillWinsOverTheBuiltInOne()
    {
        using var dir = new TempDir();
        var model = dir.File("model");
        Directory.CreateDirectory(Path.Combine(model, "tokenizer"));
        File.Copy(TestPaths.GoldenFile("clip/vocab.json"), Path.Combine(model, "tokenizer", "vocab.json"));
        File.Copy(TestPaths.GoldenFile("clip/merges.txt"), Path.Combine(model, "tokenizer", "merges.txt"));
        var tokenizer = Isolated(dir).LoadTokenizer(modelFolder: model, modelVocabularySize: 49408);
        Assert.Equal(Path.Combine(model, "tokenizer", "vocab.json"), tokenizer.Vocabulary.Source);
    }

    [Fact]
    public void AModelWithAnotherVocabularySizeNeverGetsClipsSilently()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<FileNotFoundException>(() => Isolated(dir).LoadTokenizer(modelFolder: dir.File("model"), modelVocabularySize: 1000));
        Assert.Contains("49408 tokens", e.Message);
        Assert.Contains("1000 tokens", e.Message);
        Assert.Contains(Path.Combine(dir.File("model"), "tokenizer"), e.Message);

        // A CLIP vocabulary found on disk is refused too: its ids run past the model's token embedding.
        var data = dir.File("data");
        Directory.CreateDirectory(Path.Combine(data, "clip"));
        File.Copy(TestPaths.GoldenFile("clip/" + TokenizerLocator.OpenAiFileName), Path.Combine(data, "clip", TokenizerLocator.OpenAiFileName));
        var withData = new TokenizerLocator(k => k == "SHARPDIFFUSION_DATA" ? data : null, dir.File("home"));
        var refused = Assert.Throws<InvalidModelFileException>(() => withData.LoadTokenizer(modelVocabularySize: 1000));
        Assert.Contains("49408 token ids", refused.Message);
        Assert.Contains("only 1000", refused.Message);
        Assert.Equal(new[] { 320, 2368 }, withData.LoadTokenizer(modelVocabularySize: 49408).Encode("a cat"));
    }

    [Fact]
    public void GenerateWithoutATokenizerOptionMakesTheSameImageAsWithTheGoldenVocabulary()
    {
        using var dir = new TempDir();
        string[] Args(string png) => ["generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--prompt", "a photograph of an astronaut riding a horse", "--steps", "3", "--seed", "42", "--width", "16", "--height", "16", "--out", png];
        var withVocabulary = dir.File("with.png");
        var without = dir.File("without.png");
        var errors = new StringWriter();
        Assert.Equal(0, CliApp.Run([.. Args(withVocabulary), "--tokenizer", TestPaths.GoldenFile("clip")], new StringWriter(), errors, stderrIsTerminal: false));
        Assert.Equal(0, CliApp.Run(Args(without), new StringWriter(), errors, stderrIsTerminal: false));
        Assert.Equal(PngTextChunks.Get(PngTextChunks.Read(withVocabulary), "parameters"), PngTextChunks.Get(PngTextChunks.Read(without), "parameters"));
        Assert.Equal(File.ReadAllBytes(withVocabulary), File.ReadAllBytes(without));
    }
}
