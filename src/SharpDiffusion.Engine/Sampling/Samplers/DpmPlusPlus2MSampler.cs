using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// k-diffusion <c>sample_dpmpp_2m</c>: DPM-Solver++(2M) in t = -log σ; the first step and the step to sigma 0 are
/// first order.
/// </summary>
public sealed class DpmPlusPlus2MSampler : Sampler
{
    public override string Name => "DPM++ 2M";

    public override string Alias => "dpmpp_2m";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        var current = x;
        Tensor? oldDenoised = null;
        try
        {
            for (int i = 0; i < sigmas.Count - 1; i++)
            {
                using var scope = NewDisposeScope();
                double sigma = sigmas[i], sigmaNext = sigmas[i + 1];
                var denoised = model.Denoise(current, sigma);
                Report(context, i, sigmas, current, denoised);
                Tensor next;
                if (sigmaNext == 0)
                {
                    // sigma_fn(t_next) = 0 and -expm1(-h) = 1: the result is the denoised estimate itself.
                    next = denoised.clone();
                }
                else
                {
                    double t = -Math.Log(sigma), tNext = -Math.Log(sigmaNext);
                    double h = tNext - t;
                    double ratio = sigmaNext / sigma;
                    double weight = -double.ExpM1(-h);
                    if (oldDenoised is null)
                    {
                        next = current * ratio + denoised * weight;
                    }
                    else
                    {
                        double hLast = t + Math.Log(sigmas[i - 1]);
                        double r = hLast / h;
                        var denoisedD = denoised * (1 + 1 / (2 * r)) - oldDenoised * (1 / (2 * r));
                        next = current * ratio + denoisedD * weight;
                    }
                }
                oldDenoised?.Dispose();
                oldDenoised = denoised.DetachFromDisposeScope();
                current = Advance(current, next.DetachFromDisposeScope(), x);
            }
        }
        finally
        {
            oldDenoised?.Dispose();
        }
        return current;
    }
}
