using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// k-diffusion <c>sample_dpm_2_ancestral</c>: a DPM2 midpoint step to sigma_down, then noise × sigma_up
/// (only when sigma_down > 0). A1111's "DPM2 a" also sets <see cref="Sampler.DiscardNextToLastSigma"/>.
/// </summary>
public sealed class Dpm2AncestralSampler : Sampler
{
    public override string Name => "DPM2 a";

    public override string Alias => "dpm_2_ancestral";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        var current = x;
        for (int i = 0; i < sigmas.Count - 1; i++)
        {
            using var scope = NewDisposeScope();
            double sigma = sigmas[i];
            var denoised = model.Denoise(current, sigma);
            var (down, up) = AncestralStep(sigma, sigmas[i + 1], context.Eta);
            Report(context, i, sigmas, current, denoised);
            var d = ToD(current, sigma, denoised);
            Tensor next;
            if (down == 0)
            {
                next = current + d * (down - sigma);
            }
            else
            {
                double sigmaMid = Dpm2Sampler.Dpm2Midpoint(sigma, down);
                var x2 = current + d * (sigmaMid - sigma);
                var denoised2 = model.Denoise(x2, sigmaMid);
                var d2 = ToD(x2, sigmaMid, denoised2);
                next = current + d2 * (down - sigma);
                next = next + DrawNoise(context, next) * (context.SNoise * up);
            }
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }
}
