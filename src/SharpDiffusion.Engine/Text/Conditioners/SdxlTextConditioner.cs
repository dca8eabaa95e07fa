using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Engine.Text.Prompts;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Conditioners;

/// <summary>
/// SDXL conditioning (sgm <c>GeneralConditioner</c> with A1111's chunking and emphasis per encoder):
/// cross-attention = cat(CLIP-L penultimate without final LN, bigG penultimate without <c>ln_final</c>);
/// vector = cat(pooled bigG of the first chunk, size embeddings). An all-empty negative prompt is zeroed (text parts only).
/// The SDXL refiner has bigG alone and puts A1111's aesthetic score (6.0 for the prompt, 2.5 for the negative) where
/// the base model has the target size.
/// </summary>
public sealed class SdxlTextConditioner : ITextConditioner
{
    public const int DefaultSizeEmbeddingDim = 256;

    /// <summary>A1111's <c>sdxl_refiner_high_aesthetic_score</c> / <c>sdxl_refiner_low_aesthetic_score</c> defaults.</summary>
    public const double RefinerPromptAestheticScore = 6.0, RefinerNegativeAestheticScore = 2.5;

    private readonly ClipTextModel? _clipL;
    private readonly OpenClipTextModel _clipG;
    private readonly PromptChunker _chunkerL;
    private readonly PromptChunker _chunkerG;
    private readonly int _endId;

    /// <param name="clipL">The CLIP-L encoder (embedder 0); null for the refiner, whose only encoder is bigG.</param>
    /// <param name="clipG">The bigG encoder (embedder 1).</param>
    /// <param name="chunker">Chunker for CLIP-L (A1111: transformers' tokenizer, no html unescaping).</param>
    /// <param name="sizeEmbeddingDim">Per-number size embedding (SDXL: 256 = (2816 − 1280) / 6).</param>
    /// <param name="endId">The end-of-text id; bigG tokens after it become 0.</param>
    /// <param name="chunkerG">
    /// Chunker for bigG (A1111: open_clip's tokenizer, which html-unescapes); default: the same as CLIP-L. If the two
    /// give different chunk counts, the shorter side is padded with empty chunks (A1111 itself fails on that).
    /// </param>
    public SdxlTextConditioner(ClipTextModel? clipL, OpenClipTextModel clipG, PromptChunker chunker,
        int sizeEmbeddingDim = DefaultSizeEmbeddingDim, int endId = 49407, PromptChunker? chunkerG = null)
    {
        _clipL = clipL;
        _clipG = clipG;
        _chunkerL = chunker;
        _chunkerG = chunkerG ?? chunker;
        _endId = endId;
        SizeEmbeddingDim = sizeEmbeddingDim;
    }

    public int SizeEmbeddingDim { get; }

    /// <summary>The refiner's layout: bigG only, the aesthetic score instead of the target size.</summary>
    public bool IsRefiner => _clipL == null;

    public Conditioning Encode(IReadOnlyList<string> prompts, bool isNegative = false, ImageSizeConditioning? sizes = null) =>
        Encode(prompts, Enumerable.Repeat(sizes ?? ImageSizeConditioning.ForImage(1024, 1024), prompts.Count).ToList(), isNegative);

    /// <param name="prompts">One prompt per row.</param>
    /// <param name="sizes">Size conditioning per row.</param>
    /// <param name="isNegative">True for the negative prompt: when every prompt is "" the text outputs are zeros (A1111).</param>
    public Conditioning Encode(IReadOnlyList<string> prompts, IReadOnlyList<ImageSizeConditioning> sizes, bool isNegative)
    {
        if (sizes.Count != prompts.Count) throw new ArgumentException("one size conditioning per prompt is needed", nameof(sizes));
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var device = _clipG.parameters().First().device;
        var zs = new List<Tensor>();
        Tensor? pooled = null;
        var chunksL = ChunkedTextEncoding.ByChunkIndex(_chunkerL, prompts);
        var chunksG = ReferenceEquals(_chunkerL, _chunkerG) ? chunksL : ChunkedTextEncoding.ByChunkIndex(_chunkerG, prompts);
        int k = Math.Max(chunksL.Count, chunksG.Count);
        for (int i = 0; i < k; i++)
        {
            var batchL = i < chunksL.Count ? chunksL[i] : Enumerable.Repeat(_chunkerL.EmptyChunk(), prompts.Count).ToList();
            var batchG = i < chunksG.Count ? chunksG[i] : Enumerable.Repeat(_chunkerG.EmptyChunk(), prompts.Count).ToList();

            Tensor? zL = null;
            if (_clipL != null)
            {
                var tokensL = _clipL.EmbedTokens(ChunkedTextEncoding.Ids(batchL, device));
                ChunkedTextEncoding.PlaceEmbeddings(tokensL, batchL);
                using var outL = _clipL.EncodeEmbeddings(tokensL);
                zL = PromptEmphasis.Apply(outL.FromEnd(2), ChunkedTextEncoding.Multipliers(batchL, device), _chunkerL.Emphasis);
            }

            var idsG = ChunkedTextEncoding.PadAfterEnd(ChunkedTextEncoding.Ids(batchG, device), _endId, Sd2TextConditioner.PadId);
            var tokensG = _clipG.EmbedTokens(idsG);
            ChunkedTextEncoding.PlaceEmbeddings(tokensG, batchG);
            using var outG = _clipG.EncodeEmbeddings(tokensG);
            var zG = PromptEmphasis.Apply(outG.FromEnd(2), ChunkedTextEncoding.Multipliers(batchG, device), _chunkerG.Emphasis);
            pooled ??= _clipG.Pool(outG.FromEnd(1), idsG); // A1111 keeps the first chunk's pooled output

            zs.Add(zL is null ? zG : cat(new[] { zL, zG }, -1));
        }
        var crossAttention = cat(zs, 1);
        if (isNegative && prompts.All(p => p.Length == 0))
        {
            // sgm force_zero_embeddings=["txt"]: both text outputs become zeros, the size embeddings stay.
            crossAttention = zeros_like(crossAttention);
            pooled = zeros_like(pooled!);
        }
        var sizeEmbeddings = IsRefiner
            ? SizeEmbedding.ForRefiner(sizes, isNegative ? RefinerNegativeAestheticScore : RefinerPromptAestheticScore, SizeEmbeddingDim, device)
            : SizeEmbedding.ForSizes(sizes, SizeEmbeddingDim, device);
        var vector = cat(new[] { pooled!, sizeEmbeddings.to(pooled!.dtype) }, 1);
        return new Conditioning(crossAttention.MoveToOuterDisposeScope(), vector.MoveToOuterDisposeScope());
    }
}
