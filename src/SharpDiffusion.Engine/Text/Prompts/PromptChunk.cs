namespace SharpDiffusion.Engine.Text.Prompts;

/// <summary>
/// 77 token ids (BOS, 75 prompt tokens or padding, EOS) with one attention multiplier each, plus the places where
/// textual-inversion vectors replace token embeddings (A1111's <c>PromptChunk</c>).
/// </summary>
public sealed class PromptChunk
{
    public PromptChunk(IReadOnlyList<int> tokens, IReadOnlyList<double> multipliers, IReadOnlyList<EmbeddingPlacement> embeddings)
    {
        if (tokens.Count != multipliers.Count) throw new ArgumentException("tokens and multipliers differ in length");
        Tokens = tokens;
        Multipliers = multipliers;
        Embeddings = embeddings;
    }

    public IReadOnlyList<int> Tokens { get; }
    public IReadOnlyList<double> Multipliers { get; }

    /// <summary>Embedding vectors to place; offsets count from the first token after BOS (as A1111's fixes).</summary>
    public IReadOnlyList<EmbeddingPlacement> Embeddings { get; }
}

/// <summary>Vectors of a textual-inversion embedding placed at <paramref name="Offset"/> (after BOS) in a chunk.</summary>
public sealed record EmbeddingPlacement(int Offset, PromptEmbedding Embedding);
