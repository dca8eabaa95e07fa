namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// A1111 "Schedule type" (1.10 <c>modules/sd_schedulers.py</c>): how the sigmas of a k-diffusion run are spaced.
/// "Automatic" is not a member: it is each sampler's own choice (<see cref="Sampler.AutomaticSchedule"/>).
/// </summary>
public enum ScheduleType
{
    /// <summary>"Uniform": k-diffusion <c>DiscreteSchedule.get_sigmas</c>, timesteps evenly spaced from T-1 to 0 (the model default).</summary>
    Uniform,

    /// <summary>"Karras" (rho 7 between the model's smallest and largest sigma).</summary>
    Karras,

    /// <summary>"Exponential" (log-sigma evenly spaced between the model's largest and smallest sigma).</summary>
    Exponential,

    /// <summary>"Polyexponential" (k-diffusion, rho 1).</summary>
    Polyexponential,

    /// <summary>"SGM Uniform": as <see cref="Normal"/> over n + 1 timesteps without the last.</summary>
    SgmUniform,

    /// <summary>"KL Optimal": tan of evenly spaced arctan(sigma); ends at the smallest sigma, not 0.</summary>
    KlOptimal,

    /// <summary>"Align Your Steps": NVIDIA's 11-sigma table (SD1 or SDXL), log-linearly resampled.</summary>
    AlignYourSteps,

    /// <summary>"Simple": every (T/n)-th model sigma from the top.</summary>
    Simple,

    /// <summary>"Normal": timesteps evenly spaced between t(sigma_max) and t(sigma_min) (equal to Uniform on the SD schedules).</summary>
    Normal,

    /// <summary>"DDIM": the model sigmas at the DDIM timesteps 1, 1 + T/n, … (starts below sigma_max).</summary>
    Ddim,

    /// <summary>"Beta": sigma_min + Beta(0.6, 0.6) quantiles × (sigma_max - sigma_min).</summary>
    Beta,
}
