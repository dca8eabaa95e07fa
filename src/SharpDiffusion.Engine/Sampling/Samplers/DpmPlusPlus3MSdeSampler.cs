using static TorchSharp.torch;
using static SharpDiffusion.Engine.Sampling.Float32Math;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// k-diffusion <c>sample_dpmpp_3m_sde</c>: third-order multistep DPM-Solver++ SDE with Brownian-tree noise (first
/// and second order while fewer earlier steps exist). A1111 drops the next-to-last sigma for it.
/// </summary>
public sealed class DpmPlusPlus3MSdeSampler : Sampler
{
    public override string Name => "DPM++ 3M SDE";

    public override string Alias => "dpmpp_3m_sde";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        using var noise = CreateBrownianNoise(context, sigmas);
        var current = x;
        Tensor? denoised1 = null, denoised2 = null;
        float? h = null, h1 = null, h2 = null;
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
                    float step = s - t;
                    h = step;
                    float hEta = step * (float)(context.Eta + 1);
                    next = current * Exp(-hEta) + denoised * -ExpM1(-hEta);
                    float phi2 = ExpM1(-hEta) / hEta + 1f;
                    if (h2 is not null && denoised2 is not null)
                    {
                        float r0 = h1!.Value / step, r1 = h2.Value / step;
                        var d10 = (denoised - denoised1!) / r0;
                        var d11 = (denoised1! - denoised2) / r1;
                        var d1 = d10 + (d10 - d11) * r0 / (r0 + r1);
                        var d2 = (d10 - d11) / (r0 + r1);
                        float phi3 = phi2 / hEta - 0.5f;
                        next = next + d1 * phi2 - d2 * phi3;
                    }
                    else if (h1 is not null)
                    {
                        float r = h1.Value / step;
                        next = next + (denoised - denoised1!) / r * phi2;
                    }
                    if (context.Eta != 0)
                    {
                        using var n = noise.Noise(sigma, sigmaNext);
                        next = next + n * sigmaNext * Sqrt(-ExpM1(-2f * step * (float)context.Eta)) * context.SNoise;
                    }
                }
                denoised2?.Dispose();
                denoised2 = denoised1;
                denoised1 = denoised.DetachFromDisposeScope();
                (h1, h2) = (h, h1);
                current = Advance(current, next.DetachFromDisposeScope(), x);
            }
        }
        finally
        {
            denoised1?.Dispose();
            denoised2?.Dispose();
        }
        return current;
    }
}
