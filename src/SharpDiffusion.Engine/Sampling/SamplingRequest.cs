using SharpDiffusion.Engine.Random;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>The settings of one txt2img or img2img sampling run, named as in A1111.</summary>
public sealed record SamplingRequest
{
    /// <summary>Sampler display name or alias ("DPM++ 2M", "dpmpp_2m", also "DPM++ 2M Karras").</summary>
    public string Sampler { get; init; } = "Euler a";

    /// <summary>Schedule type; null = the one the sampler name implies, else the sampler's "Automatic".</summary>
    public ScheduleType? Schedule { get; init; }

    public int Steps { get; init; } = 20;

    /// <summary>An SDXL model (Align Your Steps uses its SDXL table).</summary>
    public bool Sdxl { get; init; }

    public double CfgScale { get; init; } = 7.0;

    /// <summary>Seed of the first image; image i uses Seed + i.</summary>
    public long Seed { get; init; }

    public int BatchSize { get; init; } = 1;

    /// <summary>A1111 "Random number generator source".</summary>
    public NoiseSourceKind Rng { get; init; } = NoiseSourceKind.Cpu;

    /// <summary>Latent shape of one image, e.g. [4, height/8, width/8].</summary>
    public long[] LatentShape { get; init; } = { 4, 64, 64 };

    /// <summary>Ancestral eta (A1111 default 1).</summary>
    public double Eta { get; init; } = 1.0;

    /// <summary>A1111's sigma-list quirks (DPM2/DPM2 a drop the next-to-last sigma, DDIM skips its last step); false = plain k-diffusion / CompVis.</summary>
    public bool A1111SigmaQuirks { get; init; } = true;

    /// <summary>img2img: the encoded (scaled) init latents [BatchSize or 1, ..LatentShape]; null for txt2img.</summary>
    public Tensor? InitLatents { get; init; }

    /// <summary>img2img denoising strength in (0, 1].</summary>
    public double DenoisingStrength { get; init; } = 0.75;

    /// <summary>
    /// img2img that runs exactly <see cref="Steps"/> steps over a longer schedule (A1111's hires. fix pass; see
    /// <see cref="Img2ImgSchedule.Plan"/>); false: the tail of a <see cref="Steps"/>-step schedule.
    /// </summary>
    public bool Img2ImgStepsRequested { get; init; }

    /// <summary>Inpainting: the latent mask blended in after every model evaluation; null: none.</summary>
    public LatentMaskBlend? LatentMask { get; init; }

    /// <summary>A1111's refiner: a second model that takes over partway (k-diffusion samplers); null: none.</summary>
    public RefinerStage? Refiner { get; init; }
}
