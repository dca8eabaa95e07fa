using SharpDiffusion.Engine.Sampling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// An eps "model" of a point mass at x0: <c>eps = (x − α(t)·x0) / √(1 − α(t)²)</c>, α = √ᾱ at the call's timestep. For
/// it every DDIM-type or UniPC update keeps <c>x_t = α_t·x0 + σ_t·ε</c> for the ε the first call implies, so a run's end
/// is known exactly. It records each call's timestep and input row 0.
/// </summary>
internal sealed class PointMassModel(Tensor x0, Func<double, double> alphaAt) : IDiffusionModel
{
    public List<float> Timesteps { get; } = new();

    public List<Tensor> Inputs { get; } = new();

    /// <summary>α at an integer timestep: the table's √ᾱ (the timestep samplers' CompVis denoiser).</summary>
    public static double DiscreteAlpha(IReadOnlyList<float> alphasCumprod, double t) => Math.Sqrt(alphasCumprod[(int)Math.Round(t)]);

    /// <summary>α of <c>NoiseScheduleVP('discrete')</c> (UniPC): log α linear between the integer timesteps.</summary>
    public static double InterpolatedAlpha(IReadOnlyList<float> alphasCumprod, double tau)
    {
        int k = Math.Clamp((int)Math.Floor(tau), 0, alphasCumprod.Count - 2);
        double f = tau - k;
        return Math.Exp(0.5 * ((1 - f) * Math.Log(alphasCumprod[k]) + f * Math.Log(alphasCumprod[k + 1])));
    }

    public Tensor Predict(Tensor x, Tensor t, Conditioning cond)
    {
        var ts = t.data<float>().ToArray();
        Assert.All(ts, v => Assert.Equal(ts[0], v));
        Timesteps.Add(ts[0]);
        Inputs.Add(x[0].clone().DetachFromDisposeScope());
        double alpha = alphaAt(ts[0]), sigma = Math.Sqrt(1 - alpha * alpha);
        using var scope = NewDisposeScope();
        return ((x.to(ScalarType.Float64) - x0.to(ScalarType.Float64) * alpha) / sigma).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }
}
