using SharpDiffusion.Engine.Text.Prompts;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Conditioners;

/// <summary>
/// A1111's <c>FrozenCLIPEmbedderWithCustomWordsBase.forward</c>: chunk every prompt, pad the batch with empty chunks,
/// encode each chunk index for the whole batch, apply emphasis, and concatenate along the token axis.
/// </summary>
internal static class ChunkedTextEncoding
{
    /// <summary>Token ids [B, 77] (int64) of one chunk index.</summary>
    public static Tensor Ids(IReadOnlyList<PromptChunk> batchChunk, Device device) =>
        tensor(batchChunk.SelectMany(c => c.Tokens.Select(t => (long)t)).ToArray(), new long[] { batchChunk.Count, batchChunk[0].Tokens.Count })
            .to(device);

    /// <summary>Multipliers [B, 77] as float32 (A1111's <c>torch.asarray(multipliers)</c>).</summary>
    public static Tensor Multipliers(IReadOnlyList<PromptChunk> batchChunk, Device device) =>
        tensor(batchChunk.SelectMany(c => c.Multipliers.Select(m => (float)m)).ToArray(), new long[] { batchChunk.Count, batchChunk[0].Multipliers.Count })
            .to(device);

    /// <summary>SD2/bigG: tokens after each row's first end token become <paramref name="padId"/> (A1111's <c>process_tokens</c>).</summary>
    public static Tensor PadAfterEnd(Tensor ids, int endId, int padId)
    {
        var result = ids.clone();
        var rows = ids.data<long>().ToArray();
        long length = ids.shape[1];
        for (long b = 0; b < ids.shape[0]; b++)
        {
            for (long i = 0; i < length; i++)
            {
                if (rows[b * length + i] != endId) continue;
                if (i + 1 < length) result[b].narrow(0, i + 1, length - i - 1).fill_(padId);
                break;
            }
        }
        return result;
    }

    /// <summary>Puts textual-inversion vectors over the token embeddings [B, 77, C] (A1111's <c>EmbeddingsWithFixes</c>).</summary>
    public static void PlaceEmbeddings(Tensor tokenEmbeddings, IReadOnlyList<PromptChunk> batchChunk)
    {
        long length = tokenEmbeddings.shape[1];
        for (int b = 0; b < batchChunk.Count; b++)
        {
            foreach (var placement in batchChunk[b].Embeddings)
            {
                long count = Math.Min(length - placement.Offset - 1, placement.Embedding.VectorCount);
                if (count <= 0) continue;
                using var vectors = placement.Embedding.Vectors.narrow(0, 0, count).to(tokenEmbeddings.dtype, tokenEmbeddings.device);
                tokenEmbeddings[b].narrow(0, placement.Offset + 1, count).copy_(vectors);
            }
        }
    }

    /// <summary>Chunks for a batch: [chunk index][row].</summary>
    public static List<IReadOnlyList<PromptChunk>> ByChunkIndex(PromptChunker chunker, IReadOnlyList<string> prompts)
    {
        var perRow = chunker.ChunkBatch(prompts);
        int k = perRow[0].Count;
        return Enumerable.Range(0, k).Select(i => (IReadOnlyList<PromptChunk>)perRow.Select(r => r[i]).ToList()).ToList();
    }
}
