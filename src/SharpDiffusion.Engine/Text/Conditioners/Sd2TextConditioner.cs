using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Engine.Text.Prompts;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Conditioners;

/// <summary>
/// SD2 conditioning (A1111's <c>FrozenOpenCLIPEmbedderWithCustomWords</c> over SD2's <c>FrozenOpenCLIPEmbedder(layer="penultimate")</c>):
/// <c>ln_final</c> of the penultimate resblock; tokens after the end token are 0; chunks and emphasis as SD1.
/// A1111 ignores CLIP skip for this encoder.
/// </summary>
public sealed class Sd2TextConditioner : ITextConditioner
{
    public const int PadId = 0;

    private readonly OpenClipTextModel _encoder;
    private readonly PromptChunker _chunker;
    private readonly int _endId;

    public Sd2TextConditioner(OpenClipTextModel encoder, PromptChunker chunker, int endId = 49407)
    {
        _encoder = encoder;
        _chunker = chunker;
        _endId = endId;
    }

    public Conditioning Encode(IReadOnlyList<string> prompts, bool isNegative = false, ImageSizeConditioning? sizes = null)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var device = _encoder.parameters().First().device;
        var zs = new List<Tensor>();
        foreach (var batchChunk in ChunkedTextEncoding.ByChunkIndex(_chunker, prompts))
        {
            var ids = ChunkedTextEncoding.PadAfterEnd(ChunkedTextEncoding.Ids(batchChunk, device), _endId, PadId);
            var tokens = _encoder.EmbedTokens(ids);
            ChunkedTextEncoding.PlaceEmbeddings(tokens, batchChunk);
            using var output = _encoder.EncodeEmbeddings(tokens);
            var z = _encoder.FinalLayerNorm(output.FromEnd(2));
            zs.Add(PromptEmphasis.Apply(z, ChunkedTextEncoding.Multipliers(batchChunk, device), _chunker.Emphasis));
        }
        var cond = cat(zs, 1);
        return new Conditioning(cond.MoveToOuterDisposeScope());
    }
}
