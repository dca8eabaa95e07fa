using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// Shared part of k-diffusion's discrete-time wrappers: <c>D(x, σ) = model(x·c_in, t(σ))·c_out + x·c_skip</c>,
/// the scalings depending on what the network predicts.
/// </summary>
public abstract class DiscreteDenoiser : IDenoiser
{
    protected DiscreteDenoiser(IDiffusionModel model, DiscreteSchedule schedule, TimestepMode timestepMode)
    {
        Model = model;
        Schedule = schedule;
        TimestepMode = timestepMode;
    }

    public IDiffusionModel Model { get; }

    public DiscreteSchedule Schedule { get; }

    public TimestepMode TimestepMode { get; }

    /// <summary>(c_skip, c_out, c_in) for one sigma.</summary>
    public abstract (double Skip, double Out, double In) Scalings(double sigma);

    /// <summary>The sigma actually used (quantised in <see cref="TimestepMode.SgmQuantized"/>) and the U-Net timestep.</summary>
    public (double Sigma, double T) Timestep(double sigma)
    {
        if (TimestepMode == TimestepMode.SgmQuantized)
        {
            int index = Schedule.NearestTimestep(sigma);
            return (Schedule.SgmSigmas[index], index);
        }
        return (sigma, Schedule.SigmaToT(sigma));
    }

    /// <summary>
    /// A1111's timestep samplers (<c>CompVisTimestepsDenoiser</c>): the U-Net's eps for variance-preserving latents
    /// <paramref name="x"/> at timestep <paramref name="t"/> (fractional for UniPC), no input scaling.
    /// </summary>
    public virtual Tensor PredictEps(Tensor x, float t, Conditioning cond)
    {
        using var timesteps = full(new[] { x.shape[0] }, t, ScalarType.Float32, x.device);
        return Model.Predict(x, timesteps, cond);
    }

    public Tensor Denoise(Tensor x, IReadOnlyList<double> sigma, Conditioning cond)
    {
        long batch = x.shape[0];
        if (sigma.Count != batch) throw new ArgumentException($"{sigma.Count} sigmas for a batch of {batch}", nameof(sigma));
        var skip = new float[batch];
        var output = new float[batch];
        var input = new float[batch];
        var t = new float[batch];
        for (int i = 0; i < batch; i++)
        {
            var (s, ti) = Timestep((float)sigma[i]);
            var c = Scalings((float)s);
            skip[i] = (float)c.Skip;
            output[i] = (float)c.Out;
            input[i] = (float)c.In;
            t[i] = (float)ti;
        }
        using var scope = NewDisposeScope();
        var shape = new long[] { batch, 1, 1, 1 };
        var cIn = tensor(input).reshape(shape).to(x.device);
        var cOut = tensor(output).reshape(shape).to(x.device);
        var cSkip = tensor(skip).reshape(shape).to(x.device);
        var timesteps = tensor(t).to(x.device);
        var prediction = Model.Predict(x * cIn, timesteps, cond);
        return (prediction * cOut + x * cSkip).MoveToOuterDisposeScope();
    }
}
