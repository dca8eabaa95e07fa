using SharpDiffusion.Engine.Embeddings;
using SharpDiffusion.Engine.Tests.Text;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Embeddings;

/// <summary>A1111's EmbeddingDatabase rules: folder walk, skipped and replaced files, longest-name matching, per-encoder vectors.</summary>
public class EmbeddingDatabaseTests
{
    private static readonly SharpDiffusion.Engine.Text.Tokenization.ClipTokenizer Tokenizer = TextGolden.HfTokenizer;

    private static Tensor Filled(int n, int c, float value) => full(n, c, value);

    private static List<int> Ids(string text) => Tokenizer.Encode(text).ToList();

    [Fact]
    public void FolderLoadFollowsA1111Rules()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("sub"));
        using var two = Filled(2, 32, 1);
        using var one = Filled(1, 32, 2);
        using var wide = Filled(2, 1024, 3);
        using var toy = Filled(1, 32, 4).reshape(32);
        SafetensorsTestWriter.Write(dir.File("alpha.safetensors"), new[] { ("string_to_param.*", two) });
        SafetensorsTestWriter.Write(dir.File("sd2neg.safetensors"), new[] { ("emb_params", wide) });
        SafetensorsTestWriter.Write(dir.File(Path.Combine("sub", "alpha.safetensors")), new[] { ("emb_params", one) });
        SafetensorsTestWriter.Write(dir.File(Path.Combine("sub", "cat-toy.bin")), new[] { ("<cat-toy>", toy) });
        File.WriteAllBytes(dir.File("broken.pt"), new byte[] { 0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e, 1, 2, 3 });
        File.WriteAllBytes(dir.File("empty.bin"), Array.Empty<byte>());
        File.WriteAllText(dir.File("notes.txt"), "not an embedding");

        using var db = EmbeddingDatabase.FromFolder(dir.Path, new[] { 32 }, SafetensorsFile.Open);

        Assert.Equal(new[] { "alpha", "cat-toy" }, db.Embeddings.Keys);
        Assert.Equal(1, db.Embeddings["alpha"].VectorCount); // the subfolder's file came later and replaced the first
        Assert.Equal(Path.Combine(dir.Path, "sub", "alpha.safetensors"), db.Embeddings["alpha"].FilePath);
        Assert.Equal(new[] { "sd2neg" }, db.Skipped.Keys);
        Assert.Equal(3, db.Warnings.Count);
        Assert.StartsWith($"embedding {dir.File("broken.pt")} was not loaded: {dir.File("broken.pt")}: ", db.Warnings[0]);
        Assert.Equal("embedding skipped: sd2neg: vectors are 1024 wide, this model's text encoder takes 32 (an SD2 embedding?)", db.Warnings[1]);
        Assert.Equal($"embedding alpha: {dir.File(Path.Combine("sub", "alpha.safetensors"))} replaces {dir.File("alpha.safetensors")} (same name)", db.Warnings[2]);
    }

    [Fact]
    public void MissingFolderLoadsNothing()
    {
        using var db = EmbeddingDatabase.FromFolder("/nonexistent/embeddings", new[] { 768 }, SafetensorsFile.Open);
        Assert.Empty(db.Embeddings);
        Assert.Empty(db.Warnings);
    }

    [Fact]
    public void LongestNameWinsAtAPosition()
    {
        using var db = new EmbeddingDatabase(new[] { 32 });
        db.Register(TextualInversionEmbedding.FromVectors("cat", Filled(1, 32, 1)));
        db.Register(TextualInversionEmbedding.FromVectors("cat toy", Filled(2, 32, 2)));
        var lookup = db.ForEncoder(Tokenizer, 32);

        var tokens = Ids("a cat toy");
        var found = lookup.FindAt(tokens, 1);
        Assert.NotNull(found);
        Assert.Equal(("cat toy", 2), (found.Value.Embedding.Name, found.Value.TokenLength));
        Assert.Null(lookup.FindAt(tokens, 0));

        var plain = lookup.FindAt(Ids("a cat sits"), 1);
        Assert.Equal(("cat", 1), (plain!.Value.Embedding.Name, plain.Value.TokenLength));
        Assert.Equal(1, plain.Value.Embedding.VectorCount);
    }

    [Fact]
    public void EqualNamesInTokensMatchInRegistrationOrderAndAReplacementGoesLast()
    {
        using var db = new EmbeddingDatabase(new[] { 32 });
        db.Register(TextualInversionEmbedding.FromVectors("Style", Filled(1, 32, 1)));
        db.Register(TextualInversionEmbedding.FromVectors("style", Filled(1, 32, 2)));
        var lookup = db.ForEncoder(Tokenizer, 32);
        var tokens = Ids("style"); // the tokenizer lower-cases, so both names have these tokens
        Assert.Equal("Style", lookup.FindAt(tokens, 0)!.Value.Embedding.Name);

        // A1111 removes a replaced name from its candidate list and appends the new one (the lookup rebuilds itself).
        db.Register(TextualInversionEmbedding.FromVectors("Style", Filled(1, 32, 3)));
        Assert.Equal("style", lookup.FindAt(tokens, 0)!.Value.Embedding.Name);
    }

    [Fact]
    public void SdxlLookupGivesEachEncoderItsOwnVectors()
    {
        using var db = new EmbeddingDatabase(new[] { 768, 1280 });
        Assert.True(db.Register(TextualInversionEmbedding.FromSdxlVectors("negxl", Filled(2, 768, 1), Filled(2, 1280, 2))));
        Assert.False(db.Register(TextualInversionEmbedding.FromVectors("sd1neg", Filled(1, 768, 3))));
        Assert.Equal("embedding skipped: sd1neg: vectors are 768 wide, this model's text encoders take 768 + 1280 (an SD1 embedding?)", Assert.Single(db.Warnings));

        var tokens = Ids("negxl");
        var l = db.ForEncoder(Tokenizer, 768).FindAt(tokens, 0)!.Value.Embedding;
        var g = db.ForEncoder(Tokenizer, 1280).FindAt(tokens, 0)!.Value.Embedding;
        Assert.Equal(new long[] { 2, 768 }, l.Vectors.shape);
        Assert.Equal(new long[] { 2, 1280 }, g.Vectors.shape);
        Assert.Equal(1f, l.Vectors[0, 0].item<float>());
        Assert.Equal(2f, g.Vectors[0, 0].item<float>());
        Assert.Null(db.ForEncoder(Tokenizer, 768).FindAt(Ids("sd1neg"), 0));
        Assert.Throws<ArgumentException>(() => db.ForEncoder(Tokenizer, 1024));
    }

    [Fact]
    public void HashesInfotextListsUsedEmbeddingsOnceWithTheTwelveDigitHash()
    {
        using var dir = new TempDir();
        using var v = Filled(1, 32, 1);
        SafetensorsTestWriter.Write(dir.File("alpha.safetensors"), new[] { ("emb_params", v) });
        SafetensorsTestWriter.Write(dir.File("beta.safetensors"), new[] { ("emb_params", v * 2) });
        using var db = EmbeddingDatabase.FromFolder(dir.Path, new[] { 32 }, SafetensorsFile.Open);
        var a = db.Find("alpha")!.ShortHash!;
        var b = db.Find("beta")!.ShortHash!;
        Assert.Equal(12, a.Length);
        Assert.NotEqual(a, b);
        Assert.Equal($"beta: {b}, alpha: {a}", db.HashesInfotext(new[] { "beta", "alpha", "beta", "unknown" }));
        Assert.Null(db.HashesInfotext(Array.Empty<string>()));

        var chunker = new SharpDiffusion.Engine.Text.Prompts.PromptChunker(Tokenizer, embeddings: db.ForEncoder(Tokenizer, 32));
        var used = EmbeddingDatabase.NamesUsed(chunker, new[] { "a beta cat, (alpha:1.2)", "beta, blurry" });
        Assert.Equal(new[] { "beta", "alpha" }, used);
        Assert.Equal($"beta: {b}, alpha: {a}", db.HashesInfotext(used));
    }
}
