using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// CompVis/Stability <c>DDIMSampler</c> with eta 0, in the variance-preserving latents x_t = sqrt(a)·x0 + sqrt(1-a)·eps
/// it works in: <c>pred_x0 = D</c>, <c>eps = (x_t - sqrt(a)·pred_x0)/sqrt(1-a)</c>,
/// <c>x_prev = sqrt(a_prev)·pred_x0 + sqrt(1-a_prev)·eps</c>. Guidance combined on D equals guidance on eps (or v):
/// the maps are affine with weights summing to one. Use the sigmas of <see cref="DiscreteSchedule.DdimSigmas"/> so
/// each sigma is exactly a schedule sigma and the U-Net gets integer timesteps.
/// </summary>
public sealed class DdimSampler : Sampler
{
    public override string Name => "DDIM";

    public override string Alias => "ddim";

    /// <summary>
    /// A1111 (1.6+, <c>sd_samplers_timesteps_impl.ddim</c>) loops over all but the first timestep: one model call fewer,
    /// ending at the noise level of the smallest DDIM timestep instead of CompVis's final step to <c>alphas_cumprod[0]</c>.
    /// </summary>
    public bool A1111SkipsLastStep { get; init; }

    public override double[] Sigmas(DiscreteSchedule schedule, int steps, ScheduleType? type, bool sdxl = false)
    {
        var sigmas = schedule.DdimSigmas(steps);
        return A1111SkipsLastStep && sigmas.Length > 2 ? sigmas[..^1] : sigmas;
    }

    /// <summary>
    /// A1111's DDIM is one of its timestep samplers: img2img noises to T[t_enc] and walks from T[t_enc − 1]
    /// (<see cref="Img2ImgSchedule.TimestepTail"/>). CompVis walks from the noise level itself.
    /// </summary>
    public override double[] Img2ImgSigmas(double[] sigmas, Img2ImgPlan plan, double strength) => A1111SkipsLastStep
        ? Img2ImgSchedule.TimestepTail(sigmas, plan, strength, minimumSteps: 2, Name)
        : base.Img2ImgSigmas(sigmas, plan, strength);

    /// <summary>DDIM starts from the unit noise itself (x_T), not noise × sigma.</summary>
    public override Tensor InitialLatent(Tensor noise, double sigmaStart) => noise.clone();

    /// <summary>CompVis <c>stochastic_encode</c>: sqrt(a)·x0 + sqrt(1-a)·noise.</summary>
    public override Tensor Img2ImgLatent(Tensor init, Tensor noise, double sigmaStart)
    {
        double a = AlphaOf(sigmaStart);
        return init * Math.Sqrt(a) + noise * Math.Sqrt(1 - a);
    }

    /// <summary>alphas_cumprod of a sigma: 1/(1+σ²).</summary>
    public static double AlphaOf(double sigma) => 1.0 / (1.0 + sigma * sigma);

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        if (A1111SkipsLastStep) sigmas = Img2ImgSchedule.TimestepWalk(sigmas, context.Img2Img);
        var current = x;
        for (int i = 0; i < sigmas.Count - 1; i++)
        {
            using var scope = NewDisposeScope();
            double sigma = sigmas[i];
            double a = AlphaOf(sigma), aPrev = AlphaOf(sigmas[i + 1]);
            // The denoiser works on k-diffusion latents x_t / sqrt(a).
            Tensor predX0, eps;
            if (model is MaskedDenoiser masked)
            {
                // Inpainting: A1111's DDIM takes the eps of the mask-blended x_t (mask before denoising) and updates its own x_t.
                var denoiser = masked.Denoiser as DiscreteDenoiser
                    ?? throw new InvalidOperationException($"{Name} inpainting needs a discrete-schedule denoiser");
                float t = denoiser.Schedule.TimestepOfSigma(sigma);
                (eps, _) = masked.Guide(current, (rows, cond) => denoiser.PredictEps(rows, t, cond));
                predX0 = (current - eps * Math.Sqrt(1 - a)) / Math.Sqrt(a);
            }
            else
            {
                predX0 = model.Denoise(current * Math.Sqrt(1 + sigma * sigma), sigma);
                eps = (current - predX0 * Math.Sqrt(a)) / Math.Sqrt(1 - a);
            }
            Report(context, i, sigmas, current, predX0);
            var next = predX0 * Math.Sqrt(aPrev) + eps * Math.Sqrt(1 - aPrev);
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }
}
