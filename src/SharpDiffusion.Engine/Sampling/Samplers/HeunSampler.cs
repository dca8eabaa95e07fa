using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// k-diffusion <c>sample_heun</c> (s_churn 0): Euler predictor, then the average of both slopes; the step to
/// sigma 0 is plain Euler (one model call).
/// </summary>
public sealed class HeunSampler : Sampler
{
    public override string Name => "Heun";

    public override string Alias => "heun";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        var current = x;
        for (int i = 0; i < sigmas.Count - 1; i++)
        {
            using var scope = NewDisposeScope();
            double sigma = sigmas[i], sigmaNext = sigmas[i + 1];
            var denoised = model.Denoise(current, sigma);
            var d = ToD(current, sigma, denoised);
            Report(context, i, sigmas, current, denoised);
            double dt = sigmaNext - sigma;
            Tensor next;
            if (sigmaNext == 0)
            {
                next = current + d * dt;
            }
            else
            {
                var x2 = current + d * dt;
                var denoised2 = model.Denoise(x2, sigmaNext);
                var d2 = ToD(x2, sigmaNext, denoised2);
                next = current + (d + d2) / 2 * dt;
            }
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }
}
