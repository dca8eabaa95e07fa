using static TorchSharp.torch;
using static SharpDiffusion.Engine.Sampling.Float32Math;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// k-diffusion <c>sample_dpmpp_sde</c> (r = 1/2): DPM-Solver++ with a stochastic midpoint, two model calls per step
/// (one on the step to 0, an Euler step), Brownian-tree noise at both half steps. Scalars are float32 as on
/// k-diffusion's sigma tensors: the tree is queried at <c>exp(-(-log σ))</c>, which is not always σ.
/// </summary>
public sealed class DpmPlusPlusSdeSampler : Sampler
{
    public override string Name => "DPM++ SDE";

    public override string Alias => "dpmpp_sde";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        const float r = 0.5f;
        const float fac = 1f / (2f * r);
        using var noise = CreateBrownianNoise(context, sigmas);
        var current = x;
        for (int i = 0; i < sigmas.Count - 1; i++)
        {
            using var scope = NewDisposeScope();
            float sigma = (float)sigmas[i], sigmaNext = (float)sigmas[i + 1];
            var denoised = model.Denoise(current, sigma);
            Report(context, i, sigmas, current, denoised);
            Tensor next;
            if (sigmaNext == 0)
            {
                next = current + (current - denoised) / sigma * (sigmaNext - sigma);
            }
            else
            {
                float t = -Log(sigma), tNext = -Log(sigmaNext);
                float h = tNext - t;
                float s = t + h * r;
                float sigmaT = Exp(-t), sigmaS = Exp(-s), sigmaTNext = Exp(-tNext);

                var (down, up) = AncestralStep(sigmaT, sigmaS, context.Eta);
                float sUnder = -Log(down);
                var x2 = current * (Exp(-sUnder) / sigmaT) - denoised * ExpM1(t - sUnder);
                using (var n1 = noise.Noise(sigmaT, sigmaS)) x2 = x2 + n1 * context.SNoise * up;
                var denoised2 = model.Denoise(x2, sigmaS);

                (down, up) = AncestralStep(sigmaT, sigmaTNext, context.Eta);
                float tNextUnder = -Log(down);
                var denoisedD = denoised * (1f - fac) + denoised2 * fac;
                next = current * (Exp(-tNextUnder) / sigmaT) - denoisedD * ExpM1(t - tNextUnder);
                using var n2 = noise.Noise(sigmaT, sigmaTNext);
                next = next + n2 * context.SNoise * up;
            }
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }
}
