using SharpDiffusion.Engine.Sampling;

namespace SharpDiffusion.Engine.Diagnostics;

/// <summary>
/// The twelve DDPM buffers an LDM single-file checkpoint carries, computed as CompVis
/// <c>ldm/models/diffusion/ddpm.py</c> <c>register_schedule</c> does (numpy float64, v_posterior = 0, stored float32)
/// for the scaled-linear schedule (linear_start 0.00085, linear_end 0.012, 1000 steps).
/// </summary>
public static class RandomModelSchedule
{
    public static IReadOnlyList<string> Names { get; } = new[]
    {
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
        "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    };

    /// <summary>Buffer name to its 1000 float32 values, in <see cref="Names"/> order.</summary>
    public static IReadOnlyDictionary<string, float[]> Buffers(int timesteps = 1000)
    {
        var betas = DiscreteSchedule.ScaledLinearBetas(timesteps);
        int n = betas.Length;
        var alphas = new double[n];
        var ac = new double[n];
        var acPrev = new double[n];
        double product = 1.0;
        for (int i = 0; i < n; i++)
        {
            alphas[i] = 1.0 - betas[i];
            acPrev[i] = product;
            product *= alphas[i];
            ac[i] = product;
        }
        float[] Map(Func<int, double> f)
        {
            var values = new float[n];
            for (int i = 0; i < n; i++) values[i] = (float)f(i);
            return values;
        }
        double PosteriorVariance(int i) => betas[i] * (1.0 - acPrev[i]) / (1.0 - ac[i]);
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal)
        {
            ["betas"] = Map(i => betas[i]),
            ["alphas_cumprod"] = Map(i => ac[i]),
            ["alphas_cumprod_prev"] = Map(i => acPrev[i]),
            ["sqrt_alphas_cumprod"] = Map(i => Math.Sqrt(ac[i])),
            ["sqrt_one_minus_alphas_cumprod"] = Map(i => Math.Sqrt(1.0 - ac[i])),
            ["log_one_minus_alphas_cumprod"] = Map(i => Math.Log(1.0 - ac[i])),
            ["sqrt_recip_alphas_cumprod"] = Map(i => Math.Sqrt(1.0 / ac[i])),
            ["sqrt_recipm1_alphas_cumprod"] = Map(i => Math.Sqrt(1.0 / ac[i] - 1.0)),
            ["posterior_variance"] = Map(PosteriorVariance),
            // The first posterior variance is 0: LDM clips it at 1e-20 before the log.
            ["posterior_log_variance_clipped"] = Map(i => Math.Log(Math.Max(PosteriorVariance(i), 1e-20))),
            ["posterior_mean_coef1"] = Map(i => betas[i] * Math.Sqrt(acPrev[i]) / (1.0 - ac[i])),
            ["posterior_mean_coef2"] = Map(i => (1.0 - acPrev[i]) * Math.Sqrt(alphas[i]) / (1.0 - ac[i])),
        };
        return result;
    }
}
