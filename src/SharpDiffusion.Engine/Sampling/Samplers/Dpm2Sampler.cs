using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// k-diffusion <c>sample_dpm_2</c> (s_churn 0): a midpoint step (midpoint at the geometric mean of σ and σ_next);
/// the step to sigma 0 is Euler. A1111's "DPM2" also sets <see cref="Sampler.DiscardNextToLastSigma"/>.
/// </summary>
public sealed class Dpm2Sampler : Sampler
{
    public override string Name => "DPM2";

    public override string Alias => "dpm_2";

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
            Tensor next;
            if (sigmaNext == 0)
            {
                next = current + d * (sigmaNext - sigma);
            }
            else
            {
                double sigmaMid = Dpm2Midpoint(sigma, sigmaNext);
                var x2 = current + d * (sigmaMid - sigma);
                var denoised2 = model.Denoise(x2, sigmaMid);
                var d2 = ToD(x2, sigmaMid, denoised2);
                next = current + d2 * (sigmaNext - sigma);
            }
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }

    /// <summary>
    /// <c>exp(lerp(log σ, log σ_next, 0.5))</c> in float32 as k-diffusion computes it on sigma tensors
    /// (torch's lerp with weight ≥ 0.5 is <c>end - (end - start)·(1 - weight)</c>).
    /// </summary>
    internal static double Dpm2Midpoint(double sigma, double sigmaNext)
    {
        float a = (float)Math.Log((float)sigma), b = (float)Math.Log((float)sigmaNext);
        return (float)Math.Exp(b - (b - a) * 0.5f);
    }
}
