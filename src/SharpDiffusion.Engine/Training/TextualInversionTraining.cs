using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// The differentiable pieces of A1111's textual-inversion training (textual_inversion.py): the conditioning with the
/// trainable vectors put in place of the placeholder's tokens (sd_hijack's <c>EmbeddingsWithFixes</c>: rows
/// offset+1 … offset+n of the token-embedding output, BOS being row 0, before the positions are added), and the loss
/// A1111 optimises, CompVis <c>LatentDiffusion.p_losses</c> with the checkpoint's own DDPM buffers (no noise offset,
/// no min-SNR).
/// </summary>
public static class TextualInversionTraining
{
    /// <summary>Token embeddings of <paramref name="ids"/> [B, T] with <paramref name="vectors"/> [n, W] spliced in at each offset of each row.</summary>
    public static Tensor EmbedWithVectors(ClipTextModel clip, Tensor ids, Tensor vectors, IReadOnlyList<IReadOnlyList<int>> offsets) =>
        EmbedWithVectors(clip.EmbedTokens, ids, vectors, offsets);

    /// <summary>The same for any encoder's token-embedding table (OpenCLIP's for SD2 and SDXL's bigG).</summary>
    public static Tensor EmbedWithVectors(Func<Tensor, Tensor> embedTokens, Tensor ids, Tensor vectors, IReadOnlyList<IReadOnlyList<int>> offsets)
    {
        using var scope = NewDisposeScope();
        Tensor tokens;
        using (no_grad()) tokens = embedTokens(ids);
        long n = vectors.shape[0], length = tokens.shape[1];
        var rows = new List<Tensor>();
        for (int b = 0; b < tokens.shape[0]; b++)
        {
            var row = tokens[b];
            var pieces = new List<Tensor>();
            long cursor = 0;
            foreach (int offset in offsets[b].Order())
            {
                long start = offset + 1;
                if (start + n > length) throw new ArgumentException($"an embedding at offset {offset} runs past the {length}-token chunk");
                pieces.Add(row.narrow(0, cursor, start - cursor));
                pieces.Add(vectors.to(row.dtype));
                cursor = start + n;
            }
            pieces.Add(row.narrow(0, cursor, length - cursor));
            rows.Add(cat(pieces.ToArray(), 0));
        }
        return stack(rows.ToArray()).MoveToOuterDisposeScope();
    }

    /// <summary>A1111's SD1 conditioning: the final layer norm of the last (or clip-skip) layer over the spliced embeddings.</summary>
    public static Tensor Conditioning(ClipTextModel clip, Tensor ids, Tensor vectors, IReadOnlyList<IReadOnlyList<int>> offsets, int clipSkip = 1)
    {
        using var embedded = EmbedWithVectors(clip, ids, vectors, offsets);
        using var hidden = clip.EncodeEmbeddings(embedded);
        return clip.FinalLayerNorm(hidden.FromEnd(Math.Max(1, clipSkip)));
    }

    /// <summary>
    /// CompVis <c>p_losses</c>: <c>x_noisy = sqrt_alphas_cumprod[t]·x0 + sqrt_one_minus_alphas_cumprod[t]·noise</c> (the
    /// checkpoint's buffers; a file without them, such as SDXL's, gets the same scaled-linear schedule computed),
    /// target the noise (or <c>get_v</c> = <c>a·noise − s·x0</c> for v-prediction), <c>mean((unet(x_noisy, t, cond, y) − target)²)</c>
    /// over everything; <paramref name="vector"/> is SDXL's pooled-text-and-sizes input.
    /// </summary>
    public static Tensor LdmLoss(StableDiffusionCheckpoint checkpoint, Tensor x0, Tensor noise, Tensor timesteps, Tensor conditioning, Tensor? vector = null)
    {
        using var scope = NewDisposeScope();
        var index = timesteps.to(ScalarType.Int64);
        var (sqrtAlphas, sqrtOneMinus) = Buffers(checkpoint.File);
        var a = sqrtAlphas.index_select(0, index).view(-1, 1, 1, 1);
        var s = sqrtOneMinus.index_select(0, index).view(-1, 1, 1, 1);
        var noisy = a * x0 + s * noise;
        var target = checkpoint.Prediction == Prediction.V ? a * noise - s * x0 : noise;
        var unet = checkpoint.UNet;
        bool records = unet.RecordsGradients;
        unet.RecordsGradients = true;
        try
        {
            var prediction = unet.Forward(noisy, timesteps, conditioning, vector);
            return (prediction - target).square().mean().MoveToOuterDisposeScope();
        }
        finally
        {
            unet.RecordsGradients = records;
        }
    }

    private static (Tensor SqrtAlphasCumprod, Tensor SqrtOneMinusAlphasCumprod) Buffers(IModelFile file)
    {
        var a = file.Tensors.FirstOrDefault(t => t.Name == "sqrt_alphas_cumprod");
        var s = file.Tensors.FirstOrDefault(t => t.Name == "sqrt_one_minus_alphas_cumprod");
        if (a != null && s != null) return (TensorReading.Read(file, a, ScalarType.Float32), TensorReading.Read(file, s, ScalarType.Float32));
        using var schedule = new KohyaNoiseSchedule();
        return (schedule.AlphasCumprod.sqrt(), (1.0f - schedule.AlphasCumprod).sqrt());
    }
}
