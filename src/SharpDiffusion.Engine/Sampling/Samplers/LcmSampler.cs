using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// A1111's LCM sampler (<c>sd_samplers_lcm</c>): its own denoiser on the 50-step LCM grid (timesteps 19, 39, …, 999;
/// a sigma maps to the nearest grid timestep in log sigma, <c>c_skip</c>/<c>c_out</c> of the scaled timestep), and the
/// loop <c>x = D(x, σ_i)</c>, plus <c>σ_{i+1}·randn</c> while σ_{i+1} &gt; 0. Automatic sigmas: the grid's own
/// <c>get_sigmas(n)</c>. Meant for LCM-distilled eps models.
/// </summary>
public sealed class LcmSampler : Sampler
{
    private const int OriginalSteps = 50;

    public override string Name => "LCM";

    public override string Alias => "lcm";

    /// <summary>The 50-entry LCM table: <c>alphas_cumprod[19 + 20k]</c> (for a 1000-step model).</summary>
    public static DiscreteSchedule Grid(DiscreteSchedule schedule)
    {
        int skip = schedule.Timesteps / OriginalSteps;
        var alphas = new float[OriginalSteps];
        for (int x = 0; x < OriginalSteps; x++) alphas[OriginalSteps - 1 - x] = schedule.AlphasCumprod[schedule.Timesteps - 1 - x * skip];
        return new DiscreteSchedule(alphas);
    }

    public override double[] Sigmas(DiscreteSchedule schedule, int steps, ScheduleType? type, bool sdxl = false)
    {
        var grid = Grid(schedule);
        if (type is not null and not ScheduleType.Uniform) return grid.GetSigmas(steps, type.Value, sdxl);
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "steps must be at least 1");
        int skip = schedule.Timesteps / OriginalSteps;
        float start = TimestepOf(grid, grid.SigmaMax, skip), end = TimestepOf(grid, grid.SigmaMin, skip);
        var t = DiscreteSchedule.LinspaceFloat32(start, end, steps);
        var result = new double[steps + 1];
        for (int i = 0; i < steps; i++) result[i] = grid.TToSigma(Math.Clamp((t[i] - (skip - 1)) / skip, 0f, OriginalSteps - 1));
        return result;
    }

    /// <summary>LCM <c>sigma_to_t</c>: the grid timestep nearest in log sigma.</summary>
    private static int TimestepOf(DiscreteSchedule grid, double sigma, int skip)
    {
        float logSigma = (float)Math.Log((float)sigma);
        int best = 0;
        float bestDistance = float.PositiveInfinity;
        for (int k = 0; k < grid.Timesteps; k++)
        {
            float d = MathF.Abs(logSigma - grid.LogSigmas[k]);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = k;
            }
        }
        return best * skip + (skip - 1);
    }

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        var guidance = RowGuidance(model);
        var denoiser = guidance.Denoiser as DiscreteDenoiser
            ?? throw new InvalidOperationException("LCM needs a discrete-schedule denoiser (the U-Net and its alphas_cumprod)");
        var grid = Grid(denoiser.Schedule);
        int skip = denoiser.Schedule.Timesteps / OriginalSteps;
        var current = x;
        for (int i = 0; i < sigmas.Count - 1; i++)
        {
            using var scope = NewDisposeScope();
            float sigma = (float)sigmas[i];
            int t = TimestepOf(grid, sigma, skip);
            var (denoised, _) = guidance.Guide(current, (rows, cond) => Denoise(denoiser.Model, rows, cond, sigma, t));
            Report(context, i, sigmas, current, denoised);
            var next = denoised;
            if (sigmas[i + 1] > 0) next = next + DrawNoise(context, next) * (float)sigmas[i + 1];
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }

    /// <summary><c>LCMCompVisDenoiser.forward</c>: eps at the grid timestep, x0 = x - σ·eps, then LCM's boundary scalings.</summary>
    private static Tensor Denoise(IDiffusionModel model, Tensor x, Conditioning cond, float sigma, int t)
    {
        float cIn = 1f / MathF.Sqrt(sigma * sigma + 1f);
        using var timesteps = full(new[] { x.shape[0] }, (float)t, ScalarType.Float32, x.device);
        var eps = model.Predict(x * cIn, timesteps, cond);
        var x0 = x + eps * -sigma;
        float scaled = t * 10f;
        float cSkip = 0.25f / (scaled * scaled + 0.25f), cOut = scaled / MathF.Sqrt(scaled * scaled + 0.25f);
        return x0 * cOut + x * cSkip;
    }
}
