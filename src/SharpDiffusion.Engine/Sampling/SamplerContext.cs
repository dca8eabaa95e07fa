using SharpDiffusion.Engine.Random;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>Per-run settings and hooks of a sampler.</summary>
public sealed class SamplerContext
{
    /// <summary>
    /// Fresh N(0,1) noise shaped like the latents, drawn by ancestral samplers after a step's model call(s) (never on
    /// the step to sigma 0). Required by ancestral samplers.
    /// </summary>
    public Func<Tensor>? AncestralNoise { get; init; }

    /// <summary>Called once per step, after its first model call.</summary>
    public Action<SamplerStep>? Callback { get; init; }

    /// <summary>Ancestral eta (A1111 "Eta for ancestral samplers", default 1).</summary>
    public double Eta { get; init; } = 1.0;

    /// <summary>Scale of the ancestral noise (k-diffusion s_noise, default 1).</summary>
    public double SNoise { get; init; } = 1.0;

    /// <summary>A1111's <c>is_img2img</c>: the run continues init latents (UniPC then starts at the tail's time, not t = 1).</summary>
    public bool Img2Img { get; init; }

    public CancellationToken Cancellation { get; init; }

    /// <summary>
    /// Creates the Brownian-tree noise of the SDE samplers (A1111 <c>create_noise_sampler</c>: one tree per image seed,
    /// spanning the run's sigmas — for img2img the full schedule's, not the tail's). Called with the sigmas the sampler
    /// receives; required by the SDE samplers, which dispose it.
    /// </summary>
    public Func<IReadOnlyList<double>, BrownianNoiseSampler>? BrownianNoise { get; init; }

    /// <summary>The model's smallest and largest sigma (DPM fast / adaptive integrate between them); null = the ends of the sigma list.</summary>
    public (double Min, double Max)? ModelSigmaRange { get; init; }

    /// <summary>A context whose ancestral noise comes from per-image sources (A1111 ImageRNG), for latents of <paramref name="imageShape"/> per image.</summary>
    public static SamplerContext WithNoise(BatchNoise noise, long[] imageShape, Action<SamplerStep>? callback = null) =>
        new() { AncestralNoise = () => noise.Next(imageShape), Callback = callback };
}
