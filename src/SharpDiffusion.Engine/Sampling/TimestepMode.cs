namespace SharpDiffusion.Engine.Sampling;

/// <summary>How a denoiser turns sigma into the timestep the U-Net gets.</summary>
public enum TimestepMode
{
    /// <summary>k-diffusion <c>CompVisDenoiser(quantize=False)</c> (A1111): fractional t interpolated in log sigma.</summary>
    Fractional,

    /// <summary>
    /// sgm <c>DiscreteDenoiser</c> (SDXL reference code): sigma is replaced by the nearest schedule sigma (in sigma)
    /// and the U-Net gets that integer timestep.
    /// </summary>
    SgmQuantized,
}
