using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>A denoiser with fixed conditioning and no guidance (CFG scale 1 without an unconditional pass).</summary>
public sealed class ConditionedDenoiser : IGuidedDenoiser
{
    private readonly IDenoiser denoiser;
    private readonly Conditioning cond;

    public ConditionedDenoiser(IDenoiser denoiser, Conditioning cond)
    {
        this.denoiser = denoiser;
        this.cond = cond;
    }

    public Tensor Denoise(Tensor x, double sigma)
    {
        long batch = x.shape[0];
        using var scope = NewDisposeScope();
        var rows = cond.ExpandTo(batch);
        var denoised = denoiser.Denoise(x, Enumerable.Repeat(sigma, (int)batch).ToArray(), rows);
        return denoised.MoveToOuterDisposeScope();
    }
}
