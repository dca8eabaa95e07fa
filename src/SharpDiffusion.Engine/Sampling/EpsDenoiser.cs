namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// k-diffusion <c>CompVisDenoiser</c> for eps-prediction models (SD1, SDXL): <c>c_in = 1/sqrt(σ²+1)</c>,
/// <c>D = x - σ·eps</c>.
/// </summary>
public sealed class EpsDenoiser : DiscreteDenoiser
{
    public EpsDenoiser(IDiffusionModel model, DiscreteSchedule schedule, TimestepMode timestepMode = TimestepMode.Fractional)
        : base(model, schedule, timestepMode)
    {
    }

    public override (double Skip, double Out, double In) Scalings(double sigma) =>
        (1.0, -sigma, 1.0 / Math.Sqrt(sigma * sigma + 1.0));
}
