using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// Classifier-free guidance: one batched call on <c>[uncond rows, cond rows]</c> (the goldens' order),
/// <c>D = D_uncond + scale·(D_cond - D_uncond)</c>. When the prompts encode to different lengths (a prompt longer
/// than 75 tokens against a short negative), the two halves run as separate calls, as A1111 does by default
/// (pad_cond_uncond off).
/// </summary>
public sealed class CfgDenoiser : IGuidedDenoiser, IRowGuidance, IDisposable
{
    private readonly IDenoiser denoiser;
    private readonly Conditioning cond;
    private readonly Conditioning uncond;
    private Conditioning? batched;
    private long batchedFor = -1;

    public CfgDenoiser(IDenoiser denoiser, Conditioning cond, Conditioning uncond, double scale)
    {
        this.denoiser = denoiser;
        this.cond = cond;
        this.uncond = uncond;
        Scale = scale;
    }

    public double Scale { get; }

    public IDenoiser Denoiser => denoiser;

    public (Tensor Guided, Tensor Uncond) Guide(Tensor x, Func<Tensor, Conditioning, Tensor> rows, double scaleFactor = 1.0)
    {
        long batch = x.shape[0];
        using var scope = NewDisposeScope();
        Tensor u, c;
        if (cond.CrossAttention.shape[1] != uncond.CrossAttention.shape[1])
        {
            u = rows(x, uncond.ExpandTo(batch));
            c = rows(x, cond.ExpandTo(batch));
        }
        else
        {
            var output = rows(cat(new[] { x, x }, 0), BatchedConditioning(batch));
            u = output.narrow(0, 0, batch);
            c = output.narrow(0, batch, batch);
        }
        var guided = u + (c - u) * (Scale * scaleFactor);
        return (guided.MoveToOuterDisposeScope(), u.contiguous().MoveToOuterDisposeScope());
    }

    public Tensor Denoise(Tensor x, double sigma)
    {
        long batch = x.shape[0];
        using var scope = NewDisposeScope();
        if (cond.CrossAttention.shape[1] != uncond.CrossAttention.shape[1])
        {
            var rowSigmas = Enumerable.Repeat(sigma, (int)batch).ToArray();
            var du = denoiser.Denoise(x, rowSigmas, uncond.ExpandTo(batch));
            var dc = denoiser.Denoise(x, rowSigmas, cond.ExpandTo(batch));
            return (du + (dc - du) * Scale).MoveToOuterDisposeScope();
        }
        var both = BatchedConditioning(batch);
        var xIn = cat(new[] { x, x }, 0);
        var sigmas = Enumerable.Repeat(sigma, (int)(2 * batch)).ToArray();
        var denoised = denoiser.Denoise(xIn, sigmas, both);
        var u = denoised.narrow(0, 0, batch);
        var c = denoised.narrow(0, batch, batch);
        return (u + (c - u) * Scale).MoveToOuterDisposeScope();
    }

    private Conditioning BatchedConditioning(long batch)
    {
        if (batched is not null && batchedFor == batch) return batched;
        DisposeBatched();
        using var scope = NewDisposeScope();
        var joined = Conditioning.Concat(uncond.ExpandTo(batch), cond.ExpandTo(batch));
        // Kept across steps: owned by this object, not by any caller's dispose scope.
        joined.CrossAttention.DetachFromDisposeScope();
        joined.Vector?.DetachFromDisposeScope();
        joined.ImageConditioning?.DetachFromDisposeScope();
        batched = joined;
        batchedFor = batch;
        return joined;
    }

    private void DisposeBatched()
    {
        batched?.CrossAttention.Dispose();
        batched?.Vector?.Dispose();
        batched?.ImageConditioning?.Dispose();
        batched = null;
    }

    public void Dispose() => DisposeBatched();
}
