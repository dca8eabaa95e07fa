using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// A1111's timestep samplers (<c>CompVisSampler</c>: DDIM CFG++, PLMS, UniPC): they run on the DDIM timesteps
/// <c>T = clip(range(0, 1000, 1000 // steps) + 1, 0, 999)</c> with the U-Net's eps in variance-preserving latents,
/// starting from the unit noise, and ignore the schedule type. The sigma list carries the timesteps (σ(T),
/// descending, no trailing 0): the loops make <c>len(T) - 1</c> steps and end at timestep T[0] = 1, not at a fully
/// denoised x0.
/// </summary>
public abstract class TimestepSampler : Sampler
{
    public override double[] Sigmas(DiscreteSchedule schedule, int steps, ScheduleType? type, bool sdxl = false)
    {
        var timesteps = schedule.DdimTimesteps(steps);
        return timesteps.Reverse().Select(t => (double)schedule.Sigmas[t]).ToArray();
    }

    /// <summary>A1111's img2img: noise to T[t_enc], then the loop from T[t_enc − 1] (<see cref="Img2ImgSchedule.TimestepTail"/>).</summary>
    public override double[] Img2ImgSigmas(double[] sigmas, Img2ImgPlan plan, double strength) =>
        Img2ImgSchedule.TimestepTail(sigmas, plan, strength, minimumSteps: 2, Name);

    /// <summary>x_T is the unit noise itself.</summary>
    public override Tensor InitialLatent(Tensor noise, double sigmaStart) => noise.clone();

    /// <summary>CompVis <c>stochastic_encode</c>: sqrt(a)·x0 + sqrt(1-a)·noise at the first timestep of the tail.</summary>
    public override Tensor Img2ImgLatent(Tensor init, Tensor noise, double sigmaStart)
    {
        double a = DdimSampler.AlphaOf(sigmaStart);
        return init * Math.Sqrt(a) + noise * Math.Sqrt(1 - a);
    }

    /// <summary>The model wrapper and the descending timesteps a sigma list stands for.</summary>
    protected (IRowGuidance Guidance, DiscreteDenoiser Denoiser, int[] Timesteps) Setup(IGuidedDenoiser model, IReadOnlyList<double> sigmas)
    {
        var guidance = RowGuidance(model);
        var denoiser = guidance.Denoiser as DiscreteDenoiser
            ?? throw new InvalidOperationException($"{Name} needs a discrete-schedule denoiser (the U-Net and its alphas_cumprod)");
        return (guidance, denoiser, sigmas.Select(denoiser.Schedule.TimestepOfSigma).ToArray());
    }

    /// <summary>Guided eps at timestep <paramref name="t"/> (and the unconditional eps).</summary>
    protected static (Tensor Eps, Tensor Uncond) GuidedEps(IRowGuidance guidance, DiscreteDenoiser denoiser, Tensor x, float t, double scaleFactor = 1.0) =>
        guidance.Guide(x, (rows, cond) => denoiser.PredictEps(rows, t, cond), scaleFactor);

    /// <summary>DDIM's update from alphas_cumprod a to a_prev: (x_prev, pred_x0), in float32 as A1111.</summary>
    protected static (Tensor Next, Tensor PredX0) DdimStep(Tensor x, Tensor eps, Tensor direction, float a, float aPrev)
    {
        var predX0 = (x - eps * MathF.Sqrt(1f - a)) / MathF.Sqrt(a);
        var next = predX0 * MathF.Sqrt(aPrev) + direction * MathF.Sqrt(1f - aPrev);
        return (next, predX0);
    }
}

/// <summary>
/// A1111 "DDIM CFG++" (<c>sd_samplers_timesteps_impl.ddim_cfgpp</c>, Chung et al. 2024): DDIM with eta 0 whose guidance
/// scale is divided by 12.5 and whose direction term uses the unconditional eps. One generator draw per step (× 0).
/// </summary>
public sealed class DdimCfgPlusPlusSampler : TimestepSampler
{
    public override string Name => "DDIM CFG++";

    public override string Alias => "ddim_cfgpp";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        sigmas = Img2ImgSchedule.TimestepWalk(sigmas, context.Img2Img);
        var (guidance, denoiser, timesteps) = Setup(model, sigmas);
        var alphas = denoiser.Schedule.AlphasCumprod;
        var current = x;
        for (int i = 0; i < timesteps.Length - 1; i++)
        {
            using var scope = NewDisposeScope();
            var (eps, uncond) = GuidedEps(guidance, denoiser, current, timesteps[i], 1 / 12.5);
            var (next, predX0) = DdimStep(current, eps, uncond, alphas[timesteps[i]], alphas[timesteps[i + 1]]);
            DrawNoise(context, next).Dispose(); // eta 0: A1111 draws sigma_t · randn with sigma_t = 0
            Report(context, i, timesteps.Length - 1, sigmas[i + 1], next, predX0);
            current = Advance(current, next.DetachFromDisposeScope(), x);
        }
        return current;
    }
}

/// <summary>
/// A1111 "PLMS" (<c>sd_samplers_timesteps_impl.plms</c>): pseudo linear multistep on eps — a pseudo improved Euler
/// first step (two model calls), then Adams–Bashforth of orders 2, 3, 4 on the earlier eps.
/// </summary>
public sealed class PlmsSampler : TimestepSampler
{
    public override string Name => "PLMS";

    public override string Alias => "plms";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        sigmas = Img2ImgSchedule.TimestepWalk(sigmas, context.Img2Img);
        var (guidance, denoiser, timesteps) = Setup(model, sigmas);
        var alphas = denoiser.Schedule.AlphasCumprod;
        var oldEps = new List<Tensor>();
        var current = x;
        try
        {
            for (int i = 0; i < timesteps.Length - 1; i++)
            {
                using var scope = NewDisposeScope();
                float a = alphas[timesteps[i]], aPrev = alphas[timesteps[i + 1]];
                var (eps, _) = GuidedEps(guidance, denoiser, current, timesteps[i]);
                Tensor prime = oldEps.Count switch
                {
                    0 => (eps + GuidedEps(guidance, denoiser, DdimStep(current, eps, eps, a, aPrev).Next, timesteps[i + 1]).Eps) / 2,
                    1 => (eps * 3 - oldEps[^1]) / 2,
                    2 => (eps * 23 - oldEps[^1] * 16 + oldEps[^2] * 5) / 12,
                    _ => (eps * 55 - oldEps[^1] * 59 + oldEps[^2] * 37 - oldEps[^3] * 9) / 24,
                };
                var (next, predX0) = DdimStep(current, prime, prime, a, aPrev);
                oldEps.Add(eps.DetachFromDisposeScope());
                if (oldEps.Count >= 4)
                {
                    oldEps[0].Dispose();
                    oldEps.RemoveAt(0);
                }
                Report(context, i, timesteps.Length - 1, sigmas[i + 1], next, predX0);
                current = Advance(current, next.DetachFromDisposeScope(), x);
            }
        }
        finally
        {
            foreach (var e in oldEps) e.Dispose();
        }
        return current;
    }
}
