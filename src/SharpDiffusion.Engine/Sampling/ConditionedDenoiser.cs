using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>A denoiser with fixed conditioning and no guidance (CFG scale 1 without an unconditional pass).</summary>
public sealed class ConditionedDenoiser : IGuidedDenoiser, IRowGuidance
{
    private readonly IDenoiser denoiser;
    private readonly Conditioning cond;

    public ConditionedDenoiser(IDenoiser denoiser, Conditioning cond)
    {
        this.denoiser = denoiser;
        this.cond = cond;
    }

    public IDenoiser Denoiser => denoiser;

    public (Tensor Guided, Tensor Uncond) Guide(Tensor x, Func<Tensor, Conditioning, Tensor> rows, double scaleFactor = 1.0)
    {
        using var scope = NewDisposeScope();
        var output = rows(x, cond.ExpandTo(x.shape[0]));
        return (output.MoveToOuterDisposeScope(), output.alias().MoveToOuterDisposeScope());
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
