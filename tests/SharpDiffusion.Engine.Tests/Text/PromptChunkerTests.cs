using System.Text.Json;
using SharpDiffusion.Engine.Text.Prompts;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Text;

public class PromptChunkerTests
{
    private static readonly JsonElement Cases = TextGolden.Json("a1111/conditioning.json").GetProperty("cases");

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Cases.EnumerateArray()) data.Add(c.GetProperty("name").GetString()!);
        return data;
    }

    internal static IEnumerable<string> Names() => Cases.EnumerateArray().Select(c => c.GetProperty("name").GetString()!);

    internal static JsonElement Case(string name) => Cases.EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    internal static string[] Texts(JsonElement c) => c.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();

    private static void AssertChunks(JsonElement expectedRows, IReadOnlyList<IReadOnlyList<PromptChunk>> actual)
    {
        Assert.Equal(expectedRows.GetArrayLength(), actual.Count);
        for (int r = 0; r < actual.Count; r++)
        {
            var expectedChunks = expectedRows[r];
            Assert.Equal(expectedChunks.GetArrayLength(), actual[r].Count);
            for (int k = 0; k < actual[r].Count; k++)
            {
                Assert.Equal(expectedChunks[k].GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()), actual[r][k].Tokens);
                Assert.Equal(expectedChunks[k].GetProperty("multipliers").EnumerateArray().Select(t => t.GetDouble()), actual[r][k].Multipliers);
            }
        }
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void TokenIdsAndMultipliersEqualA1111(string name)
    {
        var c = Case(name);
        var chunker = new PromptChunker(TextGolden.HfTokenizer);
        var texts = Texts(c);
        var batch = chunker.ChunkBatch(texts);
        // [row][chunk]; rows with fewer chunks end with empty chunks.
        var expected = c.GetProperty("chunks");
        AssertChunks(expected, batch);
        Assert.Equal(c.GetProperty("token_count").GetInt32(), texts.Max(t => chunker.Chunk(t).TokenCount));
    }

    [Fact]
    public void TokensAndMultipliersEqualTheStoredTensors()
    {
        foreach (var c in Cases.EnumerateArray())
        {
            var name = c.GetProperty("name").GetString()!;
            var batch = new PromptChunker(TextGolden.HfTokenizer).ChunkBatch(Texts(c));
            using var tokens = TextGolden.Read("a1111/conditioning.safetensors", name + ".tokens");
            using var multipliers = TextGolden.Read("a1111/conditioning.safetensors", name + ".multipliers");
            Assert.Equal(batch.SelectMany(r => r.SelectMany(k => k.Tokens.Select(t => (long)t))), tokens.data<long>().ToArray());
            Assert.Equal(batch.SelectMany(r => r.SelectMany(k => k.Multipliers)), multipliers.data<double>().ToArray());
        }
    }

    [Fact]
    public void EmphasisNoneKeepsBracketsAsText()
    {
        var c = Case("emphasis");
        var chunker = new PromptChunker(TextGolden.HfTokenizer, EmphasisMode.None);
        AssertChunks(c.GetProperty("emphasis_variants").GetProperty("None").GetProperty("chunks"), chunker.ChunkBatch(Texts(c)));
    }

    [Fact]
    public void EmptyChunkIsStartThenEndTokens()
    {
        var chunk = new PromptChunker(TextGolden.HfTokenizer).EmptyChunk();
        Assert.Equal(new[] { 49406 }.Concat(Enumerable.Repeat(49407, 76)), chunk.Tokens);
        Assert.All(chunk.Multipliers, m => Assert.Equal(1.0, m));
    }

    [Fact]
    public void BacktrackZeroDisablesCommaPadding()
    {
        var c = Case("comma_backtrack");
        var chunks = new PromptChunker(TextGolden.HfTokenizer, commaPaddingBacktrack: 0).Chunk(Texts(c)[0]).Chunks;
        Assert.Equal(2, chunks.Count);
        Assert.DoesNotContain(49407, chunks[0].Tokens.Skip(1).Take(75)); // a hard split fills the first chunk
    }

    /// <summary>Finds the token sequence of "cat" and replaces it by N vectors (the textual-inversion seam).</summary>
    private sealed class FixedLookup(int[] nameTokens, PromptEmbedding embedding) : IPromptEmbeddingLookup
    {
        public (PromptEmbedding Embedding, int TokenLength)? FindAt(IReadOnlyList<int> tokens, int position) =>
            position + nameTokens.Length <= tokens.Count && nameTokens.Select((t, i) => tokens[position + i] == t).All(x => x)
                ? (embedding, nameTokens.Length)
                : null;
    }

    [Fact]
    public void EmbeddingLookupReplacesTokensByVectorsWithTheSegmentWeight()
    {
        using var vectors = zeros(3, 32);
        var embedding = new PromptEmbedding("myembed", vectors);
        var catTokens = TextGolden.HfTokenizer.Encode("cat").ToArray();
        var chunker = new PromptChunker(TextGolden.HfTokenizer, embeddings: new FixedLookup(catTokens, embedding));
        var chunk = Assert.Single(chunker.Chunk("a (cat:1.5) sits").Chunks);
        var placement = Assert.Single(chunk.Embeddings);
        Assert.Equal(1, placement.Offset);
        Assert.Equal(new[] { 49406, 320, 0, 0, 0, TextGolden.HfTokenizer.Encode("sits")[0], 49407 }, chunk.Tokens.Take(7));
        Assert.Equal(new[] { 1.0, 1.0, 1.5, 1.5, 1.5, 1.0 }, chunk.Multipliers.Take(6));
    }

    [Fact]
    public void EmbeddingThatDoesNotFitStartsANewChunk()
    {
        using var vectors = zeros(10, 32);
        var embedding = new PromptEmbedding("wide", vectors);
        var catTokens = TextGolden.HfTokenizer.Encode("cat").ToArray();
        var chunker = new PromptChunker(TextGolden.HfTokenizer, embeddings: new FixedLookup(catTokens, embedding));
        var prompt = string.Join(" ", Enumerable.Repeat("a", 70)) + " cat";
        var chunks = chunker.Chunk(prompt).Chunks;
        Assert.Equal(2, chunks.Count);
        Assert.Equal(0, Assert.Single(chunks[1].Embeddings).Offset);
        Assert.Empty(chunks[0].Embeddings);
    }
}
