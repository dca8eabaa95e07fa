using static TorchSharp.torch;

namespace SharpDiffusion.Engine;

/// <summary>
/// What the U-Net is conditioned on: the cross-attention context [B, tokens, dim] and, for SDXL-style models, the
/// pooled/size vector [B, adm] (<c>y</c>). Whoever creates it owns the tensors; <see cref="Dispose"/> releases them.
/// </summary>
public sealed class Conditioning : IDisposable
{
    public Conditioning(Tensor crossAttention, Tensor? vector = null)
    {
        if (crossAttention.dim() != 3) throw new ArgumentException($"cross-attention context must be [batch, tokens, dim], got [{string.Join(", ", crossAttention.shape)}]", nameof(crossAttention));
        if (vector is not null && (vector.dim() != 2 || vector.shape[0] != crossAttention.shape[0]))
            throw new ArgumentException($"vector must be [batch, dim] with the context's batch {crossAttention.shape[0]}, got [{string.Join(", ", vector.shape)}]", nameof(vector));
        CrossAttention = crossAttention;
        Vector = vector;
    }

    public Tensor CrossAttention { get; }

    public Tensor? Vector { get; }

    public long BatchSize => CrossAttention.shape[0];

    /// <summary>Rows of <paramref name="first"/> then rows of <paramref name="second"/> (one batched model call).</summary>
    public static Conditioning Concat(Conditioning first, Conditioning second)
    {
        if ((first.Vector is null) != (second.Vector is null))
            throw new ArgumentException("cannot batch a conditioning that has a vector with one that has none");
        var context = cat(new[] { first.CrossAttention, second.CrossAttention }, 0);
        var vector = first.Vector is null ? null : cat(new[] { first.Vector, second.Vector! }, 0);
        return new Conditioning(context, vector);
    }

    /// <summary>This conditioning with <paramref name="batchSize"/> rows: unchanged if it has them, repeated if it has one row.</summary>
    public Conditioning ExpandTo(long batchSize)
    {
        if (BatchSize == batchSize) return this;
        if (BatchSize != 1) throw new ArgumentException($"conditioning has {BatchSize} rows, cannot use it for a batch of {batchSize}");
        var context = CrossAttention.expand(batchSize, -1, -1);
        var vector = Vector?.expand(batchSize, -1);
        return new Conditioning(context, vector);
    }

    public void Dispose()
    {
        CrossAttention.Dispose();
        Vector?.Dispose();
    }
}
