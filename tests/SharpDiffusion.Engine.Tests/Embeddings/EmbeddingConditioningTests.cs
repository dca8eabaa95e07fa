using SharpDiffusion.Engine.Embeddings;
using SharpDiffusion.Engine.Tests.Text;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Engine.Text.Prompts;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Embeddings;

/// <summary>
/// Embeddings from the database inside the tiny SD1 text encoder (width 32): vectors at exactly the right input
/// positions, conditioning = the encoder run on that hand-built input, shifting, chunk boundaries, wrong widths.
/// </summary>
public class EmbeddingConditioningTests(ITestOutputHelper output) : IDisposable
{
    private const int Bos = 49406, Eos = 49407;
    private static readonly SharpDiffusion.Engine.Text.Tokenization.ClipTokenizer Tokenizer = TextGolden.HfTokenizer;

    private readonly ClipTextModel _model = TextEncoderGoldenTests.LoadSd1Encoder();
    private readonly EmbeddingDatabase _db = new(new[] { 32 });
    private readonly TorchSharp.DisposeScope _scope = NewDisposeScope();

    public void Dispose()
    {
        _scope.Dispose();
        _db.Dispose();
        _model.Dispose();
    }

    private Tensor Register(string name, int vectors, int seed)
    {
        var v = randn(new long[] { vectors, 32 }, generator: new Generator((ulong)seed));
        Assert.True(_db.Register(TextualInversionEmbedding.FromVectors(name, v)));
        return _db.Find(name)!.Vectors!;
    }

    private PromptChunker Chunker() => new(Tokenizer, embeddings: _db.ForEncoder(Tokenizer, 32));

    private static List<int> Ids(string text) => Tokenizer.Encode(text).ToList();

    /// <summary>[BOS] + content + EOS padding to 77.</summary>
    private static List<int> Chunk(IEnumerable<int> content)
    {
        var ids = new List<int> { Bos };
        ids.AddRange(content);
        while (ids.Count < 77) ids.Add(Eos);
        return ids;
    }

    /// <summary>Token embeddings of <paramref name="ids"/> with rows offset+1.. replaced by the vectors (built independently of the engine).</summary>
    private Tensor ManualInput(List<int> ids, params (int Offset, Tensor Vectors)[] placements)
    {
        using var mode = inference_mode();
        var input = _model.EmbedTokens(tensor(ids.Select(i => (long)i).ToArray(), new long[] { 1, 77 })).clone();
        foreach (var (offset, vectors) in placements)
            for (int i = 0; i < vectors.shape[0]; i++) input[0, offset + 1 + i] = vectors[i];
        return input;
    }

    private Tensor EncodeManual(Tensor input)
    {
        using var mode = inference_mode();
        using var o = _model.EncodeEmbeddings(input);
        return _model.FinalLayerNorm(o.FromEnd(1));
    }

    /// <summary>The input tensor the conditioner builds for one chunk (ids → token embeddings → placements).</summary>
    private Tensor EngineInput(PromptChunk chunk)
    {
        using var mode = inference_mode();
        var input = _model.EmbedTokens(ChunkedTextEncoding.Ids(new[] { chunk }, CPU));
        ChunkedTextEncoding.PlaceEmbeddings(input, new[] { chunk });
        return input;
    }

    private void AssertClose(Tensor expected, Tensor actual, double tolerance, string what)
    {
        var diff = TextGolden.MaxAbsDiff(actual, expected);
        output.WriteLine($"{what}: max abs diff {diff:E2}");
        Assert.True(diff <= tolerance, $"{what}: max abs diff {diff:E2} > {tolerance:E0}");
    }

    [Fact]
    public void VectorsReplaceTheNameAtItsPositionAndLaterTokensShift()
    {
        var vectors = Register("myemb", 3, 11);
        var name = Ids("myemb");
        output.WriteLine($"'myemb' is {name.Count} token(s): {string.Join(", ", name)}");
        const string prompt = "a photo of myemb standing";
        var before = Ids("a photo of");
        var after = Ids("standing");

        var chunk = Assert.Single(Chunker().Chunk(prompt).Chunks);
        var expectedIds = Chunk(before.Concat(new[] { 0, 0, 0 }).Concat(after));
        Assert.Equal(expectedIds, chunk.Tokens);
        Assert.Equal(1 + before.Count + 3, chunk.Tokens.ToList().IndexOf(after[0])); // shifted by 3 − name length
        var placement = Assert.Single(chunk.Embeddings);
        Assert.Equal((before.Count, "myemb"), (placement.Offset, placement.Embedding.Name));

        using var manual = ManualInput(expectedIds, (before.Count, vectors));
        using var engineInput = EngineInput(chunk);
        Assert.True(engineInput.equal(manual).all().item<bool>(), "encoder input differs from token embeddings + vectors");
        for (int i = 0; i < 3; i++) Assert.True(engineInput[0, before.Count + 1 + i].equal(vectors[i]).all().item<bool>());

        using var cond = new Sd1TextConditioner(_model, Chunker()).Encode(new[] { prompt });
        using var expected = EncodeManual(manual);
        AssertClose(expected, cond.CrossAttention, 1e-6, "conditioning vs encoder on the hand-built input");

        using var negative = new Sd1TextConditioner(_model, Chunker()).Encode(new[] { prompt }, isNegative: true);
        AssertClose(expected, negative.CrossAttention, 1e-6, "negative prompt");

        using var plain = new Sd1TextConditioner(_model, new PromptChunker(Tokenizer)).Encode(new[] { prompt });
        Assert.True(TextGolden.MaxAbsDiff(plain.CrossAttention, cond.CrossAttention) > 1e-2, "the embedding changed nothing");
    }

    [Fact]
    public void AOneVectorEmbeddingWithALongNameShiftsLaterTokensBack()
    {
        const string name = "watercolor painting style";
        var nameIds = Ids(name);
        Assert.True(nameIds.Count >= 3);
        var vectors = Register(name, 1, 12);
        var chunk = Assert.Single(Chunker().Chunk($"a {name}, red").Chunks);
        var expected = Chunk(Ids("a").Concat(new[] { 0 }).Concat(Ids(", red")));
        Assert.Equal(expected, chunk.Tokens);

        using var cond = new Sd1TextConditioner(_model, Chunker()).Encode(new[] { $"a {name}, red" });
        using var manual = ManualInput(expected, (1, vectors));
        using var reference = EncodeManual(manual);
        AssertClose(reference, cond.CrossAttention, 1e-6, "one-vector embedding");
    }

    [Fact]
    public void AnEmbeddingThatDoesNotFitTheChunkMovesToTheNextChunk()
    {
        var vectors = Register("fiveway", 5, 13);
        var words = string.Join(" ", Enumerable.Repeat("a", 73));
        var prompt = words + " fiveway standing";
        var chunks = Chunker().Chunk(prompt).Chunks;
        Assert.Equal(2, chunks.Count);
        Assert.Equal(Chunk(Enumerable.Repeat(Ids("a")[0], 73)), chunks[0].Tokens); // 73 + 5 > 75: closed early, padded
        Assert.Empty(chunks[0].Embeddings);
        var second = Chunk(new[] { 0, 0, 0, 0, 0 }.Concat(Ids("standing")));
        Assert.Equal(second, chunks[1].Tokens);
        Assert.Equal(0, Assert.Single(chunks[1].Embeddings).Offset);

        using var cond = new Sd1TextConditioner(_model, Chunker()).Encode(new[] { prompt });
        Assert.Equal(new long[] { 1, 154, 32 }, cond.CrossAttention.shape);
        using var first = new Sd1TextConditioner(_model, Chunker()).Encode(new[] { words });
        AssertClose(first.CrossAttention, cond.CrossAttention.narrow(1, 0, 77), 1e-6, "chunk 1 (text only)");
        using var manual = ManualInput(second, (0, vectors));
        using var expected = EncodeManual(manual);
        AssertClose(expected, cond.CrossAttention.narrow(1, 77, 77), 1e-6, "chunk 2 (embedding first)");
    }

    [Fact]
    public void AnEmbeddingThatFitsExactlyStaysInTheChunk()
    {
        Register("fiveway", 5, 13);
        var chunks = Chunker().Chunk(string.Join(" ", Enumerable.Repeat("a", 70)) + " fiveway").Chunks;
        var chunk = Assert.Single(chunks);
        Assert.Equal(70, Assert.Single(chunk.Embeddings).Offset);
        Assert.Equal(Eos, chunk.Tokens[76]);
    }

    [Fact]
    public void EmphasisAppliesToTheEmbeddingsVectors()
    {
        Register("myemb", 3, 11);
        var chunk = Assert.Single(Chunker().Chunk("a (myemb:1.3) b").Chunks);
        Assert.Equal(new[] { 1.0, 1.0, 1.3, 1.3, 1.3, 1.0, 1.0 }, chunk.Multipliers.Take(7));
    }

    [Fact]
    public void AWrongWidthEmbeddingIsSkippedWithAReasonAndItsNameStaysText()
    {
        Assert.False(_db.Register(TextualInversionEmbedding.FromVectors("easynegative", zeros(2, 768))));
        Assert.Equal("embedding skipped: easynegative: vectors are 768 wide, this model's text encoder takes 32 (an SD1 embedding?)", Assert.Single(_db.Warnings));
        var chunk = Assert.Single(Chunker().Chunk("easynegative").Chunks);
        Assert.Empty(chunk.Embeddings);
        Assert.Equal(Chunk(Ids("easynegative")), chunk.Tokens);
    }
}
