using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>k-diffusion <c>sample_euler_ancestral</c>: an Euler step to sigma_down, then fresh noise × sigma_up.</summary>
public sealed class EulerAncestralSampler : Sampler
{
    public override string Name => "Euler a";

    public override string Alias => "euler_ancestral";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        var current = x;
        for (int i = 0; i < sigmas.Count - 1; i++)
        {
            using var scope = NewDisposeScope();
            var denoised = model.Denoise(current, sigmas[i]);
            var (down, up) = AncestralStep(sigmas[i], sigmas[i + 1], context.Eta);
            Report(context, i, sigmas, current, denoised);
            var next = current + ToD(current, sigmas[i], denoised) * (down - sigmas[i]);
            if (sigmas[i + 1] > 0) next = next + DrawNoise(context, next) * (context.SNoise * up);
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }
}
