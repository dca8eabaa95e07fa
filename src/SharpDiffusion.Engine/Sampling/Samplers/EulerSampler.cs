using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>k-diffusion <c>sample_euler</c> (s_churn 0): <c>x += (x - D)/σ · (σ_next - σ)</c>.</summary>
public sealed class EulerSampler : Sampler
{
    public override string Name => "Euler";

    public override string Alias => "euler";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        var current = x;
        for (int i = 0; i < sigmas.Count - 1; i++)
        {
            using var scope = NewDisposeScope();
            var denoised = model.Denoise(current, sigmas[i]);
            Report(context, i, sigmas, current, denoised);
            var next = current + ToD(current, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i]);
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }
}
