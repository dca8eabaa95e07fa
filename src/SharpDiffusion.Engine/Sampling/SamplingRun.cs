using SharpDiffusion.Engine.Random;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// One sampling run the way A1111 does it: per-image noise sources (draw #0 is the initial noise, later draws feed
/// ancestral steps), the sampler's sigma list (img2img: its tail by strength), batched CFG, and the sampler loop.
/// Returns the final latents [BatchSize, ..LatentShape] (unscaled, ready for the VAE's 1/scale_factor).
/// </summary>
public static class SamplingRun
{
    /// <param name="uncond">null: no guidance (conditioned only)</param>
    public static Tensor Run(IDenoiser denoiser, Conditioning cond, Conditioning? uncond, SamplingRequest request, Action<SamplerStep>? callback = null, CancellationToken cancellation = default)
    {
        if (request.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(request), request.BatchSize, "batch size must be at least 1");
        var (sampler, impliedSchedule) = SamplerRegistry.Resolve(request.Sampler, request.A1111SigmaQuirks);
        Img2ImgPlan? plan = request.InitLatents is null ? null
            : Img2ImgSchedule.Plan(request.Steps, request.DenoisingStrength, request.Img2ImgStepsRequested);
        var sigmas = sampler.Sigmas(denoiser.Schedule, plan?.ScheduleSteps ?? request.Steps, request.Schedule ?? impliedSchedule, request.Sdxl);
        // A1111 spans the SDE samplers' Brownian tree over the full schedule, also for img2img.
        var fullSigmas = sigmas;
        if (plan is { } img2img) sigmas = sampler.Img2ImgSigmas(sigmas, img2img, request.DenoisingStrength);

        using var noise = BatchNoise.ForSeeds(request.Rng, request.Seed, request.BatchSize);
        var seeds = Enumerable.Range(0, request.BatchSize).Select(i => request.Seed + i).ToArray();
        using var initialNoise = noise.Next(request.LatentShape);
        using var start = request.InitLatents is null
            ? sampler.InitialLatent(initialNoise, sigmas[0])
            : sampler.Img2ImgLatent(request.InitLatents.to(initialNoise.device), initialNoise, sigmas[0]);

        IGuidedDenoiser guided = Guidance(denoiser, cond, uncond, request.CfgScale);
        if (request.Refiner is { } refiner)
        {
            RefinerStage.CheckSampler(sampler, inpainting: request.LatentMask != null);
            guided = new RefinerSwitch(guided, Guidance(refiner.Denoiser, refiner.Cond, uncond is null ? null : refiner.Uncond, request.CfgScale),
                denoiser.Schedule, refiner);
        }
        if (request.LatentMask is { } blend) guided = new MaskedDenoiser(guided, blend);
        try
        {
            var context = new SamplerContext
            {
                AncestralNoise = () => noise.Next(request.LatentShape),
                Callback = callback,
                Eta = request.Eta,
                Img2Img = request.InitLatents is not null,
                Cancellation = cancellation,
                BrownianNoise = _ => BrownianNoiseSampler.ForSigmas(fullSigmas, seeds, request.LatentShape, request.Rng),
                // DPM fast/adaptive: the model's range for txt2img; img2img uses the tail's ends (A1111 sample_img2img).
                ModelSigmaRange = request.InitLatents is null ? (denoiser.Schedule.SigmaMin, denoiser.Schedule.SigmaMax) : null,
            };
            return sampler.Sample(guided, start, sigmas, context);
        }
        finally
        {
            (guided as IDisposable)?.Dispose();
        }
    }

    private static IGuidedDenoiser Guidance(IDenoiser denoiser, Conditioning cond, Conditioning? uncond, double scale) => uncond is null
        ? new ConditionedDenoiser(denoiser, cond)
        : new CfgDenoiser(denoiser, cond, uncond, scale);
}
