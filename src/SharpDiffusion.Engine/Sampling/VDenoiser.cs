using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// k-diffusion <c>CompVisVDenoiser</c> (sigma_data 1) for v-prediction models (SD2 768-v):
/// <c>c_skip = 1/(σ²+1)</c>, <c>c_out = -σ/sqrt(σ²+1)</c>, <c>c_in = 1/sqrt(σ²+1)</c>.
/// </summary>
public sealed class VDenoiser : DiscreteDenoiser
{
    public VDenoiser(IDiffusionModel model, DiscreteSchedule schedule, TimestepMode timestepMode = TimestepMode.Fractional)
        : base(model, schedule, timestepMode)
    {
    }

    /// <summary>
    /// A1111 <c>CompVisTimestepsVDenoiser</c>: <c>eps = sqrt(ac[int t])·v + sqrt(1 - ac[int t])·x</c> — the table index is
    /// the truncated timestep while the U-Net gets the fractional one.
    /// </summary>
    public override Tensor PredictEps(Tensor x, float t, Conditioning cond)
    {
        using var scope = NewDisposeScope();
        var v = base.PredictEps(x, t, cond);
        float ac = Schedule.AlphasCumprod[(int)t];
        return (v * MathF.Sqrt(ac) + x * MathF.Sqrt(1f - ac)).MoveToOuterDisposeScope();
    }

    public override (double Skip, double Out, double In) Scalings(double sigma)
    {
        double s2 = sigma * sigma + 1.0;
        return (1.0 / s2, -sigma / Math.Sqrt(s2), 1.0 / Math.Sqrt(s2));
    }
}
