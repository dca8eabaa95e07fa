using static TorchSharp.torch;
using static SharpDiffusion.Engine.Sampling.Float32Math;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// k-diffusion <c>sample_dpmpp_2m_sde</c>: DPM-Solver++(2M) SDE with Brownian-tree noise, the second-order
/// correction as a midpoint (A1111 "DPM++ 2M SDE") or Heun (<see cref="Heun"/>, "DPM++ 2M SDE Heun") step.
/// </summary>
public sealed class DpmPlusPlus2MSdeSampler : Sampler
{
    /// <summary>solver_type 'heun' instead of 'midpoint'.</summary>
    public bool Heun { get; init; }

    public override string Name => Heun ? "DPM++ 2M SDE Heun" : "DPM++ 2M SDE";

    public override string Alias => Heun ? "dpmpp_2m_sde_heun" : "dpmpp_2m_sde";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        using var noise = CreateBrownianNoise(context, sigmas);
        var current = x;
        Tensor? oldDenoised = null;
        float hLast = 0, h = 0;
        try
        {
            for (int i = 0; i < sigmas.Count - 1; i++)
            {
                using var scope = NewDisposeScope();
                float sigma = (float)sigmas[i], sigmaNext = (float)sigmas[i + 1];
                var denoised = model.Denoise(current, sigma);
                Report(context, i, sigmas, current, denoised);
                Tensor next;
                if (sigmaNext == 0)
                {
                    next = denoised.clone();
                }
                else
                {
                    float t = -Log(sigma), s = -Log(sigmaNext);
                    h = s - t;
                    float etaH = (float)context.Eta * h;
                    float decay = sigmaNext / sigma * Exp(-etaH);
                    float weight = -ExpM1(-h - etaH);
                    next = current * decay + denoised * weight;
                    if (oldDenoised is not null)
                    {
                        float r = hLast / h;
                        float coefficient = Heun ? (weight / (-h - etaH) + 1f) * (1f / r) : 0.5f * weight * (1f / r);
                        next = next + (denoised - oldDenoised) * coefficient;
                    }
                    if (context.Eta != 0)
                    {
                        using var n = noise.Noise(sigma, sigmaNext);
                        next = next + n * sigmaNext * Sqrt(-ExpM1(-2f * etaH)) * context.SNoise;
                    }
                }
                oldDenoised?.Dispose();
                oldDenoised = denoised.DetachFromDisposeScope();
                hLast = h;
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
