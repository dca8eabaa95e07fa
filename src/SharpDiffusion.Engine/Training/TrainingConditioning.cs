using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Text.Encoders;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// Textual-inversion vectors to put over placeholder rows while encoding: one set per text encoder (SDXL has two,
/// <c>clip_l</c> and <c>clip_g</c>), at the same offsets in every encoder's row.
/// </summary>
internal sealed record EmbeddingSplice(IReadOnlyList<IReadOnlyList<int>> Offsets, Tensor? ClipL, Tensor? OpenClip);

/// <summary>
/// The text conditioning every trainer feeds the U-Net, for each family as its reference trainer computes it from a
/// [B, 77] row of token ids: SD1 the final layer norm of CLIP-L's last (or clip-skip) layer; SD2 OpenCLIP's
/// <c>ln_final</c> of the penultimate layer; SDXL (kohya's sdxl_train_util, A1111's SDXL conditioner) CLIP-L's and
/// bigG's penultimate hidden states side by side without final norms, and bigG's pooled output, its ids padded with 0
/// after the end token. Gradients flow wherever the encoders (or the spliced vectors) record them.
/// </summary>
internal static class TrainingConditioning
{
    public static (Tensor Context, Tensor? Pooled) Encode(StableDiffusionCheckpoint checkpoint, Tensor ids, int clipSkip, EmbeddingSplice? splice = null)
    {
        switch (checkpoint.ClipL, checkpoint.OpenClip)
        {
            case ({ } clip, null):
            {
                using var hidden = EncodeClip(clip, ids, splice?.ClipL, splice?.Offsets);
                return (clip.FinalLayerNorm(hidden.FromEnd(Math.Max(1, clipSkip))), null);
            }
            case (null, { } open):
            {
                using var hidden = EncodeOpenClip(open, ids, splice?.OpenClip, splice?.Offsets);
                return (open.FinalLayerNorm(hidden.FromEnd(2)), null);
            }
            case ({ } clip, { } open):
            {
                using var hiddenL = EncodeClip(clip, ids, splice?.ClipL, splice?.Offsets);
                using var idsG = ChunkedTextEncoding.PadAfterEnd(ids, checkpoint.Tokenizer.EosId, Sd2TextConditioner.PadId);
                using var hiddenG = EncodeOpenClip(open, idsG, splice?.OpenClip, splice?.Offsets);
                return (cat([hiddenL.FromEnd(2), hiddenG.FromEnd(2)], -1), open.Pool(hiddenG.FromEnd(1), idsG));
            }
            default:
                throw new InvalidOperationException($"{checkpoint.Architecture.DisplayName} has no text encoder the trainers run");
        }
    }

    /// <summary>
    /// SDXL's vector input for a training batch: the pooled bigG text feature and the six size embeddings of each
    /// image as kohya computes them (<see cref="LoraTrainer.KohyaSizes"/>, flips included); null for families without one.
    /// </summary>
    public static Tensor? Vector(StableDiffusionCheckpoint checkpoint, Tensor? pooled, IReadOnlyList<TrainingImage> images, IReadOnlyList<bool> flips)
    {
        if (pooled is null) return null;
        using var sizes = SizeEmbedding.ForSizes(images.Select((image, k) => LoraTrainer.KohyaSizes(image, flips[k])).ToList(),
            checkpoint.SdxlSizeEmbeddingDim, pooled.device);
        using var typed = sizes.to(pooled.dtype);
        return cat([pooled, typed], 1);
    }

    private static TextEncoderOutput EncodeClip(ClipTextModel clip, Tensor ids, Tensor? vectors, IReadOnlyList<IReadOnlyList<int>>? offsets)
    {
        if (vectors is null) return clip.Encode(ids);
        using var embedded = TextualInversionTraining.EmbedWithVectors(clip.EmbedTokens, ids, vectors, offsets!);
        return clip.EncodeEmbeddings(embedded);
    }

    private static TextEncoderOutput EncodeOpenClip(OpenClipTextModel open, Tensor ids, Tensor? vectors, IReadOnlyList<IReadOnlyList<int>>? offsets)
    {
        if (vectors is null) return open.Encode(ids);
        using var embedded = TextualInversionTraining.EmbedWithVectors(open.EmbedTokens, ids, vectors, offsets!);
        return open.EncodeEmbeddings(embedded);
    }
}

/// <summary>
/// A frozen text encoder's conditioning of each caption or prompt ([1, 77, C], and SDXL's pooled [1, P]), encoded once
/// and kept until disposed: the LoRA trainer's when its encoders are not trained, the hypernetwork trainer's always.
/// </summary>
internal sealed class FrozenTextCache(StableDiffusionCheckpoint checkpoint, int clipSkip) : IDisposable
{
    private readonly Dictionary<string, (Tensor Context, Tensor? Pooled)> _entries = new(StringComparer.Ordinal);

    /// <summary>Aliases of the cached tensors, owned by the caller's dispose scope.</summary>
    public (Tensor Context, Tensor? Pooled) Get(string text)
    {
        if (!_entries.TryGetValue(text, out var entry))
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            using var ids = tensor(CaptionTokenIds.ForCaption(checkpoint, text), [1, CaptionTokenIds.ContextLength]);
            var (context, pooled) = TrainingConditioning.Encode(checkpoint, ids, clipSkip);
            entry = (context.DetachFromDisposeScope(), pooled?.DetachFromDisposeScope());
            _entries[text] = entry;
        }
        return (entry.Context.alias(), entry.Pooled?.alias());
    }

    public void Dispose()
    {
        foreach (var (context, pooled) in _entries.Values)
        {
            context.Dispose();
            pooled?.Dispose();
        }
        _entries.Clear();
    }
}
