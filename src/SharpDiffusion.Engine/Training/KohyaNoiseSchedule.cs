using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// The training noise schedule kohya's sd-scripts uses: diffusers' <c>DDPMScheduler(scaled_linear, 0.00085..0.012, 1000)</c>,
/// i.e. <c>betas = linspace(√0.00085, √0.012, 1000)²</c> and <c>alphas_cumprod = cumprod(1 − betas)</c>, both in float32
/// (this differs from LDM's float64-computed buffer by up to 4.8e-7), and
/// <c>prepare_scheduler_for_custom_training</c>'s <c>all_snr = (√ᾱ / √(1 − ᾱ))²</c> in float32.
/// </summary>
public sealed class KohyaNoiseSchedule : IDisposable
{
    public const int TrainTimesteps = 1000;

    public KohyaNoiseSchedule(double betaStart = 0.00085, double betaEnd = 0.012)
    {
        using var roots = linspace(Math.Sqrt(betaStart), Math.Sqrt(betaEnd), TrainTimesteps, ScalarType.Float32);
        using var betas = roots.pow(2);
        using var alphas = ones_like(betas).sub_(betas);
        AlphasCumprod = alphas.cumprod(0);
        using var sqrtAc = AlphasCumprod.sqrt();
        using var sqrtOneMinus = (1.0f - AlphasCumprod).sqrt();
        AllSnr = (sqrtAc / sqrtOneMinus).pow(2);
    }

    /// <summary>ᾱ_t, float32 [1000].</summary>
    public Tensor AlphasCumprod { get; }

    /// <summary>Signal-to-noise ratio ᾱ/(1 − ᾱ) per timestep, float32 [1000].</summary>
    public Tensor AllSnr { get; }

    /// <summary>ᾱ[t] broadcastable over [B, C, H, W].</summary>
    private Tensor AlphaAt(Tensor timesteps) => AlphasCumprod.index_select(0, timesteps.to(ScalarType.Int64)).view(-1, 1, 1, 1);

    /// <summary>diffusers <c>add_noise</c>: <c>ᾱ[t]^0.5 · x0 + (1 − ᾱ[t])^0.5 · noise</c>.</summary>
    public Tensor AddNoise(Tensor x0, Tensor noise, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var ac = AlphaAt(timesteps);
        var noisy = ac.pow(0.5).mul(x0).add_((1.0f - ac).pow(0.5).mul(noise));
        return noisy.MoveToOuterDisposeScope();
    }

    /// <summary>diffusers <c>get_velocity</c> (the v target): <c>ᾱ[t]^0.5 · noise − (1 − ᾱ[t])^0.5 · x0</c>.</summary>
    public Tensor Velocity(Tensor x0, Tensor noise, Tensor timesteps)
    {
        using var scope = NewDisposeScope();
        var ac = AlphaAt(timesteps);
        var v = ac.pow(0.5).mul(noise).sub_((1.0f - ac).pow(0.5).mul(x0));
        return v.MoveToOuterDisposeScope();
    }

    /// <summary>SNR of each timestep, [B].</summary>
    public Tensor Snr(Tensor timesteps) => AllSnr.index_select(0, timesteps.to(ScalarType.Int64));

    /// <summary>
    /// kohya <c>apply_snr_weight</c> (min-SNR-γ): <c>min(snr, γ)/snr</c> for eps models, <c>min(snr, γ)/(snr + 1)</c> for v.
    /// </summary>
    public Tensor MinSnrWeight(Tensor timesteps, double gamma, bool vPrediction)
    {
        using var snr = Snr(timesteps);
        using var clipped = snr.clamp_max(gamma);
        if (!vPrediction) return clipped / snr;
        using var snrPlusOne = snr + 1.0f;
        return clipped / snrPlusOne;
    }

    public void Dispose()
    {
        AlphasCumprod.Dispose();
        AllSnr.Dispose();
    }
}
