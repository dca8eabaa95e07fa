using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Prompts;

/// <summary>A textual-inversion embedding: a name and its vectors [N, C] that replace the token embeddings of its name.</summary>
public sealed record PromptEmbedding(string Name, Tensor Vectors)
{
    public int VectorCount => (int)Vectors.shape[0];
}

/// <summary>
/// The seam for textual inversion (A1111's <c>embedding_db.find_embedding_at_position</c>): given a segment's
/// token ids and a position, the embedding whose name's tokens start there, and how many tokens that name spans.
/// </summary>
public interface IPromptEmbeddingLookup
{
    /// <returns>null when no embedding starts at <paramref name="position"/>.</returns>
    (PromptEmbedding Embedding, int TokenLength)? FindAt(IReadOnlyList<int> tokens, int position);
}
