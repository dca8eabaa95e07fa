namespace SharpDiffusion.Engine.Sampling;

/// <summary>A1111 "Schedule type": how the sigmas of a k-diffusion run are spaced.</summary>
public enum ScheduleType
{
    /// <summary>"Automatic" (k-diffusion <c>DiscreteSchedule.get_sigmas</c>: timesteps evenly spaced from 999 to 0).</summary>
    Normal,

    /// <summary>"Karras" (rho 7 between the model's smallest and largest sigma).</summary>
    Karras,

    /// <summary>"Exponential" (log-sigma evenly spaced between the model's largest and smallest sigma).</summary>
    Exponential,
}
