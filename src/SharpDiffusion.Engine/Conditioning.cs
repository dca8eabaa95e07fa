using static TorchSharp.torch;

namespace SharpDiffusion.Engine;

/// <summary>
/// What the U-Net is conditioned on: the cross-attention context [B, tokens, dim] and, for SDXL-style models, the
/// pooled/size vector [B, adm] (<c>y</c>), and for inpainting models the image conditioning [B, C, h, w] concatenated to the
/// latents (LDM's <c>c_concat</c>). Whoever creates it owns the tensors; <see cref="Dispose"/> releases them.
/// </summary>
public sealed class Conditioning : IDisposable
{
    public Conditioning(Tensor crossAttention, Tensor? vector = null, Tensor? concat = null)
    {
        if (crossAttention.dim() != 3) throw new ArgumentException($"cross-attention context must be [batch, tokens, dim], got [{string.Join(", ", crossAttention.shape)}]", nameof(crossAttention));
        if (vector is not null && (vector.dim() != 2 || vector.shape[0] != crossAttention.shape[0]))
            throw new ArgumentException($"vector must be [batch, dim] with the context's batch {crossAttention.shape[0]}, got [{string.Join(", ", vector.shape)}]", nameof(vector));
        if (concat is not null && (concat.dim() != 4 || concat.shape[0] != crossAttention.shape[0]))
            throw new ArgumentException($"image conditioning must be [batch, channels, h, w] with the context's batch {crossAttention.shape[0]}, got [{string.Join(", ", concat.shape)}]", nameof(concat));
        CrossAttention = crossAttention;
        Vector = vector;
        ImageConditioning = concat;
    }

    public Tensor CrossAttention { get; }

    public Tensor? Vector { get; }

    /// <summary>Channels the U-Net takes after the latents (inpainting: mask and masked-image latent); null for most models.</summary>
    public Tensor? ImageConditioning { get; }

    public long BatchSize => CrossAttention.shape[0];

    /// <summary>Rows of <paramref name="first"/> then rows of <paramref name="second"/> (one batched model call).</summary>
    public static Conditioning Concat(Conditioning first, Conditioning second)
    {
        if ((first.Vector is null) != (second.Vector is null))
            throw new ArgumentException("cannot batch a conditioning that has a vector with one that has none");
        var context = cat(new[] { first.CrossAttention, second.CrossAttention }, 0);
        if ((first.ImageConditioning is null) != (second.ImageConditioning is null))
            throw new ArgumentException("cannot batch a conditioning that has an image conditioning with one that has none");
        var vector = first.Vector is null ? null : cat(new[] { first.Vector, second.Vector! }, 0);
        var concat = first.ImageConditioning is null ? null : cat(new[] { first.ImageConditioning, second.ImageConditioning! }, 0);
        return new Conditioning(context, vector, concat);
    }

    /// <summary>This conditioning with <paramref name="batchSize"/> rows: unchanged if it has them, repeated if it has one row.</summary>
    public Conditioning ExpandTo(long batchSize)
    {
        if (BatchSize == batchSize) return this;
        if (BatchSize != 1) throw new ArgumentException($"conditioning has {BatchSize} rows, cannot use it for a batch of {batchSize}");
        var context = CrossAttention.expand(batchSize, -1, -1);
        var vector = Vector?.expand(batchSize, -1);
        var concat = ImageConditioning?.expand(batchSize, -1, -1, -1);
        return new Conditioning(context, vector, concat);
    }

    public void Dispose()
    {
        CrossAttention.Dispose();
        Vector?.Dispose();
        ImageConditioning?.Dispose();
    }
}
