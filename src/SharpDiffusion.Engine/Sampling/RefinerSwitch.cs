using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// The second model of an A1111 refiner run: its denoiser, the prompts encoded by its own text encoder, and the
/// fraction of the model's timesteps after which it takes over. <see cref="Switched"/> tells the caller whether it
/// did (A1111 writes the refiner's infotext fields only then).
/// </summary>
public sealed class RefinerStage(IDenoiser denoiser, Conditioning cond, Conditioning uncond, double switchAt)
{
    public IDenoiser Denoiser { get; } = denoiser;
    public Conditioning Cond { get; } = cond;
    public Conditioning Uncond { get; } = uncond;

    /// <summary>A1111's <c>refiner_switch_at</c> in (0, 1]; 1 never switches.</summary>
    public double SwitchAt { get; } = switchAt;

    public bool Switched { get; internal set; }

    /// <summary>
    /// The samplers the switch reaches: those that call the guided denoiser. The timestep samplers and LCM evaluate
    /// the U-Net row by row themselves, and DDIM does so when inpainting (the mask goes in before the model there).
    /// </summary>
    public static void CheckSampler(Sampler sampler, bool inpainting)
    {
        if (sampler is Samplers.TimestepSampler or Samplers.LcmSampler || (inpainting && sampler is Samplers.DdimSampler))
            throw new ArgumentException($"sampler {sampler.Name} does not support the refiner{(inpainting ? " when inpainting" : "")} yet (use a k-diffusion sampler such as Euler, Euler a, DPM++ 2M)");
    }

    /// <summary>
    /// A1111's <c>apply_refiner</c> (1.8+, by model timesteps): the timestep nearest the current sigma in the model's
    /// sigma table, <c>t = argmin |sigmas − σ|</c>, has completed <c>(999 − t) / 1000</c> of the schedule; the refiner takes
    /// over at the first model call where that reaches <see cref="SwitchAt"/> (t ≤ 199 at 0.8), whatever the step count
    /// or denoising strength.
    /// </summary>
    public bool TakesOverAt(DiscreteSchedule schedule, double sigma) =>
        (999 - schedule.NearestSigmaIndex((float)sigma)) / 1000.0 >= SwitchAt; // the float32 sigma tensor, as A1111's
}

/// <summary>
/// Runs the first model's guided denoiser until <see cref="RefinerStage.TakesOverAt"/> says so, then the refiner's for
/// every later call. The sampler itself goes on untouched: its sigmas, history and noise draws carry over, as in A1111
/// where only the model behind the CFG denoiser is swapped.
/// </summary>
internal sealed class RefinerSwitch(IGuidedDenoiser first, IGuidedDenoiser second, DiscreteSchedule schedule, RefinerStage stage)
    : IGuidedDenoiser, IDisposable
{
    public Tensor Denoise(Tensor x, double sigma)
    {
        if (!stage.Switched && stage.TakesOverAt(schedule, sigma)) stage.Switched = true;
        return (stage.Switched ? second : first).Denoise(x, sigma);
    }

    public void Dispose()
    {
        (first as IDisposable)?.Dispose();
        (second as IDisposable)?.Dispose();
    }
}
