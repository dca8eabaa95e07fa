using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// k-diffusion <c>sample_dpmpp_2s_ancestral</c>: a DPM-Solver++(2S) step (midpoint r = 1/2 in t = -log σ) to
/// sigma_down, then noise × sigma_up; the step to sigma 0 is Euler.
/// </summary>
public sealed class DpmPlusPlus2SAncestralSampler : Sampler
{
    public override string Name => "DPM++ 2S a";

    public override string Alias => "dpmpp_2s_ancestral";

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
            Tensor next;
            if (down == 0)
            {
                next = current + ToD(current, sigma, denoised) * (down - sigma);
            }
            else
            {
                double t = -Math.Log(sigma), tNext = -Math.Log(down);
                double h = tNext - t;
                double s = t + 0.5 * h;
                double sigmaS = Math.Exp(-s);
                var x2 = current * (sigmaS / sigma) - denoised * double.ExpM1(-h * 0.5);
                var denoised2 = model.Denoise(x2, sigmaS);
                next = current * (down / sigma) - denoised2 * double.ExpM1(-h);
            }
            if (sigmas[i + 1] > 0) next = next + DrawNoise(context, next) * (context.SNoise * up);
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }
}
