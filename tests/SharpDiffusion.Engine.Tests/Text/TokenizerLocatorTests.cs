using SharpDiffusion.Engine.Text.Tokenization;

namespace SharpDiffusion.Engine.Tests.Text;

public class TokenizerLocatorTests
{
    private static void WriteVocabulary(string folder)
    {
        Directory.CreateDirectory(folder);
        File.Copy(TestPaths.GoldenFile("clip/vocab.json"), Path.Combine(folder, "vocab.json"));
        File.Copy(TestPaths.GoldenFile("clip/merges.txt"), Path.Combine(folder, "merges.txt"));
    }

    [Fact]
    public void ExplicitPathWinsAndLoads()
    {
        var locator = new TokenizerLocator(_ => null, "/nonexistent-home");
        var golden = TestPaths.GoldenFile("clip");
        Assert.Equal(golden, locator.Locate(golden));
        var gz = TestPaths.GoldenFile("clip/" + TokenizerLocator.OpenAiFileName);
        Assert.Equal(new[] { 320, 2368 }, locator.LoadTokenizer(gz).Encode("a cat"));
    }

    [Fact]
    public void SearchOrderIsModelFolderThenHubCacheThenDataFolder()
    {
        using var dir = new TempDir();
        var home = dir.File("home");
        var env = new Dictionary<string, string?> { ["SHARPDIFFUSION_DATA"] = dir.File("data") };
        var locator = new TokenizerLocator(k => env.GetValueOrDefault(k), home);

        WriteVocabulary(Path.Combine(dir.Path, "data", "clip"));
        Assert.Equal(Path.Combine(dir.Path, "data", "clip"), locator.Locate(modelFolder: dir.File("model")));

        var snapshot = Path.Combine(home, ".cache", "huggingface", "hub", "models--openai--clip-vit-large-patch14", "snapshots", "abc123");
        WriteVocabulary(snapshot);
        Assert.Equal(snapshot, locator.Locate(modelFolder: dir.File("model")));

        WriteVocabulary(Path.Combine(dir.Path, "model", "tokenizer"));
        Assert.Equal(Path.Combine(dir.File("model"), "tokenizer"), locator.Locate(modelFolder: dir.File("model")));
    }

    [Fact]
    public void HfHomeReplacesTheDefaultCache()
    {
        using var dir = new TempDir();
        var env = new Dictionary<string, string?> { ["HF_HOME"] = dir.File("hf") };
        var locator = new TokenizerLocator(k => env.GetValueOrDefault(k), dir.File("home"));
        var snapshot = Path.Combine(dir.Path, "hf", "hub", "models--openai--clip-vit-large-patch14", "snapshots", "s1");
        WriteVocabulary(snapshot);
        Assert.Equal(snapshot, locator.Locate());
    }

    [Fact]
    public void NothingFoundListsEveryPlaceLookedAt()
    {
        using var dir = new TempDir();
        var locator = new TokenizerLocator(_ => null, dir.File("home"));
        var e = Assert.Throws<FileNotFoundException>(() => locator.Locate(modelFolder: dir.File("model")));
        Assert.Contains(Path.Combine(dir.File("model"), "tokenizer"), e.Message);
        Assert.Contains(Path.Combine(dir.File("home"), ".cache", "huggingface", "hub", "models--openai--clip-vit-large-patch14", "snapshots"), e.Message);
        Assert.Contains(Path.Combine(dir.File("home"), ".local", "share", "sharpdiffusion", "clip"), e.Message);
        Assert.Contains("no download", e.Message);
    }

    [Fact]
    public void ExplicitPathWithoutVocabularyIsAnError()
    {
        using var dir = new TempDir();
        var locator = new TokenizerLocator(_ => null, dir.File("home"));
        var e = Assert.Throws<FileNotFoundException>(() => locator.Locate(dir.Path));
        Assert.Contains(dir.Path, e.Message);
    }
}
