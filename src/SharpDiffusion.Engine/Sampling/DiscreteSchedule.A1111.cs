namespace SharpDiffusion.Engine.Sampling;

/// <summary>The schedule types A1111 1.10 adds to k-diffusion's (<c>modules/sd_schedulers.py</c>), in its float32/float64 arithmetic.</summary>
public sealed partial class DiscreteSchedule
{
    private static readonly double[] AlignYourStepsSd1 = { 14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029 };
    private static readonly double[] AlignYourStepsSdxl = { 14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029 };

    /// <summary>k-diffusion <c>get_sigmas_polyexponential</c>: <c>exp(ramp^rho · (log max - log min) + log min)</c>, ramp = linspace(1, 0, n).</summary>
    public static double[] PolyexponentialSigmas(int steps, double sigmaMin, double sigmaMax, double rho = 1.0)
    {
        RequirePositive(steps);
        var ramp = LinspaceFloat32(1f, 0f, steps);
        float span = (float)(Math.Log(sigmaMax) - Math.Log(sigmaMin)), logMin = (float)Math.Log(sigmaMin);
        var result = new double[steps + 1];
        for (int i = 0; i < steps; i++)
        {
            float r = rho == 1.0 ? ramp[i] : MathF.Pow(ramp[i], (float)rho);
            result[i] = MathF.Exp(r * span + logMin);
        }
        return result;
    }

    /// <summary>
    /// A1111 <c>normal_scheduler</c> ("Normal"; with <paramref name="sgm"/> "SGM Uniform"): t = linspace(t(sigma_max),
    /// t(sigma_min), n) (sgm: n + 1 points without the last), sigma(t), then 0.
    /// </summary>
    public double[] TimestepRangeSigmas(int steps, bool sgm)
    {
        RequirePositive(steps);
        float start = (float)SigmaToT(SigmaMax), end = (float)SigmaToT(SigmaMin);
        var t = LinspaceFloat32(start, end, sgm ? steps + 1 : steps);
        var result = new double[steps + 1];
        for (int i = 0; i < steps; i++) result[i] = TToSigma(t[i]);
        return result;
    }

    /// <summary>
    /// A1111 <c>kl_optimal</c>: <c>tan(i/n · atan(min) + (1 - i/n) · atan(max))</c> for i = 0..n in float32 — n + 1
    /// values ending at sigma_min (no trailing 0).
    /// </summary>
    public static double[] KlOptimalSigmas(int steps, double sigmaMin, double sigmaMax)
    {
        RequirePositive(steps);
        float alphaMin = MathF.Atan((float)sigmaMin), alphaMax = MathF.Atan((float)sigmaMax);
        var result = new double[steps + 1];
        for (int i = 0; i <= steps; i++)
        {
            float fraction = (float)i / steps;
            result[i] = MathF.Tan(fraction * alphaMin + (1f - fraction) * alphaMax);
        }
        return result;
    }

    /// <summary>
    /// A1111 <c>get_align_your_steps_sigmas</c>: the 11-entry table (SD1 or SDXL) as is for 11 steps, else resampled
    /// log-linearly (numpy float64 <c>interp</c>) to n values; float32; then 0. Ignores the model's sigma range.
    /// </summary>
    public static double[] AlignYourStepsSigmas(int steps, bool sdxl)
    {
        RequirePositive(steps);
        var table = sdxl ? AlignYourStepsSdxl : AlignYourStepsSd1;
        var result = new double[steps + 1];
        if (steps == table.Length)
        {
            for (int i = 0; i < steps; i++) result[i] = (float)table[i];
            return result;
        }
        var xs = LinspaceFloat64(0, 1, table.Length);
        var ys = table.Reverse().Select(v => Math.Log(v)).ToArray();
        var newXs = LinspaceFloat64(0, 1, steps);
        for (int i = 0; i < steps; i++) result[steps - 1 - i] = (float)Math.Exp(Interpolate(newXs[i], xs, ys));
        return result;
    }

    /// <summary>A1111 <c>simple_scheduler</c>: <c>sigmas[T - 1 - int(i · T/n)]</c> for i = 0..n-1, then 0.</summary>
    public double[] SimpleSigmas(int steps)
    {
        RequirePositive(steps);
        double stride = (double)Timesteps / steps;
        var result = new double[steps + 1];
        for (int i = 0; i < steps; i++) result[i] = sigmas[Timesteps - 1 - (int)(i * stride)];
        return result;
    }

    /// <summary>
    /// A1111 <c>ddim_scheduler</c>: the model sigmas at 1, 1 + s, 1 + 2s, … below T (s = max(T / n, 1), integer
    /// division), descending, then 0: starts below sigma_max, and may give more than n steps when n does not divide T.
    /// </summary>
    public double[] DdimScheduleSigmas(int steps)
    {
        RequirePositive(steps);
        int stride = Math.Max(Timesteps / steps, 1);
        var picked = new List<double>();
        for (int x = 1; x < Timesteps; x += stride) picked.Add(sigmas[x]);
        picked.Reverse();
        picked.Add(0);
        return picked.ToArray();
    }

    /// <summary>
    /// A1111 <c>beta_scheduler</c> (α = β = 0.6, its option defaults): <c>sigma_min + ppf(1 - linspace(0, 1, n)) ·
    /// (sigma_max - sigma_min)</c> in float64, then float32, then 0.
    /// </summary>
    public static double[] BetaSigmas(int steps, double sigmaMin, double sigmaMax, double alpha = 0.6, double beta = 0.6)
    {
        var quantiles = BetaQuantiles(steps, alpha, beta);
        var result = new double[steps + 1];
        for (int i = 0; i < steps; i++) result[i] = (float)(sigmaMin + quantiles[i] * (sigmaMax - sigmaMin));
        return result;
    }

    /// <summary><c>scipy.stats.beta.ppf(1 - linspace(0, 1, n), α, β)</c> (the Beta scheduler's timesteps).</summary>
    public static double[] BetaQuantiles(int steps, double alpha = 0.6, double beta = 0.6)
    {
        RequirePositive(steps);
        return LinspaceFloat64(0, 1, steps).Select(x => BetaDistribution.Quantile(1 - x, alpha, beta)).ToArray();
    }

    /// <summary>numpy <c>linspace</c> (float64): start + i·step, the last point exactly <paramref name="end"/>.</summary>
    internal static double[] LinspaceFloat64(double start, double end, int count)
    {
        var values = new double[count];
        if (count == 1)
        {
            values[0] = start;
            return values;
        }
        double step = (end - start) / (count - 1);
        for (int i = 0; i < count; i++) values[i] = start + i * step;
        values[^1] = end;
        return values;
    }

    /// <summary>numpy <c>interp</c> for increasing <paramref name="xs"/> (clamped at the ends).</summary>
    private static double Interpolate(double x, double[] xs, double[] ys)
    {
        if (x <= xs[0]) return ys[0];
        if (x >= xs[^1]) return ys[^1];
        int j = 0;
        while (xs[j + 1] <= x) j++;
        double slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]);
        return slope * (x - xs[j]) + ys[j];
    }
}
