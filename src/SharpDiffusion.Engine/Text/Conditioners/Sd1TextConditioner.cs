using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Engine.Text.Prompts;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Conditioners;

/// <summary>
/// SD1 conditioning as A1111 builds it (<c>FrozenCLIPEmbedderWithCustomWords</c>): CLIP-L last hidden state, or with
/// CLIP skip N &gt; 1 <c>final_layer_norm(hidden_states[-N])</c>; chunks of 75 tokens padded with 49407; emphasis.
/// </summary>
public sealed class Sd1TextConditioner : ITextConditioner
{
    private readonly ClipTextModel _encoder;
    private readonly PromptChunker _chunker;

    /// <param name="clipSkip">A1111's "Clip skip" (<c>CLIP_stop_at_last_layers</c>): 1 = last layer.</param>
    public Sd1TextConditioner(ClipTextModel encoder, PromptChunker chunker, int clipSkip = 1)
    {
        if (clipSkip < 1 || clipSkip > encoder.Layers) throw new ArgumentOutOfRangeException(nameof(clipSkip), $"CLIP skip must be 1..{encoder.Layers}");
        _encoder = encoder;
        _chunker = chunker;
        ClipSkip = clipSkip;
    }

    public int ClipSkip { get; }

    public Conditioning Encode(IReadOnlyList<string> prompts, bool isNegative = false, ImageSizeConditioning? sizes = null)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var device = _encoder.parameters().First().device;
        var zs = new List<Tensor>();
        foreach (var batchChunk in ChunkedTextEncoding.ByChunkIndex(_chunker, prompts))
        {
            var ids = ChunkedTextEncoding.Ids(batchChunk, device);
            var tokens = _encoder.EmbedTokens(ids);
            ChunkedTextEncoding.PlaceEmbeddings(tokens, batchChunk);
            using var output = _encoder.EncodeEmbeddings(tokens);
            var z = _encoder.FinalLayerNorm(output.FromEnd(ClipSkip));
            zs.Add(PromptEmphasis.Apply(z, ChunkedTextEncoding.Multipliers(batchChunk, device), _chunker.Emphasis));
        }
        var cond = cat(zs, 1);
        return new Conditioning(cond.MoveToOuterDisposeScope());
    }
}
