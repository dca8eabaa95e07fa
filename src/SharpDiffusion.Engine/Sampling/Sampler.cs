using SharpDiffusion.Engine.Random;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// A sampling algorithm (k-diffusion semantics): walks latents from sigmas[0] down the given sigma list, calling the
/// guided denoiser once or twice per step.
/// </summary>
public abstract class Sampler
{
    /// <summary>A1111 display name ("Euler a").</summary>
    public abstract string Name { get; }

    /// <summary>k-diffusion / snake_case name ("euler_ancestral").</summary>
    public abstract string Alias { get; }

    /// <summary>The fewest txt2img steps the sampler runs (UniPC: its order, 3).</summary>
    public virtual int MinimumSteps => 1;

    /// <summary>
    /// A1111 "DPM2"/"DPM2 a": compute steps+1 sigmas and drop the next-to-last one (k-diffusion itself does not).
    /// </summary>
    public bool DiscardNextToLastSigma { get; init; }

    /// <summary>
    /// A1111's "Automatic" schedule for this sampler (<c>samplers_k_diffusion</c> options: Karras for DPM++ 2M/SDE,
    /// Exponential for the 2M/3M SDE samplers, …); null = the model default (<see cref="ScheduleType.Uniform"/>).
    /// </summary>
    public ScheduleType? AutomaticSchedule { get; init; }

    /// <summary>
    /// The sigma list of a txt2img run (descending, ends at the final noise level). <paramref name="type"/> null is
    /// "Automatic"; <paramref name="sdxl"/> selects Align Your Steps' SDXL table.
    /// </summary>
    public virtual double[] Sigmas(DiscreteSchedule schedule, int steps, ScheduleType? type, bool sdxl = false)
    {
        var resolved = type ?? AutomaticSchedule ?? ScheduleType.Uniform;
        if (!DiscardNextToLastSigma) return schedule.GetSigmas(steps, resolved, sdxl);
        var longer = schedule.GetSigmas(steps + 1, resolved, sdxl);
        return longer.Take(longer.Length - 2).Append(longer[^1]).ToArray();
    }

    /// <summary>The starting latents of a txt2img run from unit noise.</summary>
    public virtual Tensor InitialLatent(Tensor noise, double sigmaStart) => noise * sigmaStart;

    /// <summary>
    /// The sigma list an img2img run of <paramref name="strength"/> walks, from the txt2img list of the plan's
    /// schedule (<see cref="Img2ImgSchedule.Tail(IReadOnlyList{double}, double, int)"/>); its first sigma is the noise
    /// level of <see cref="Img2ImgLatent"/>.
    /// </summary>
    public virtual double[] Img2ImgSigmas(double[] sigmas, Img2ImgPlan plan, double strength) => Img2ImgSchedule.Tail(sigmas, strength, plan.TEnc);

    /// <summary>The starting latents of an img2img run: the init latents noised to <paramref name="sigmaStart"/>.</summary>
    public virtual Tensor Img2ImgLatent(Tensor init, Tensor noise, double sigmaStart) => init + noise * sigmaStart;

    /// <summary>Runs the sampler; returns new latents (the input is not modified or disposed).</summary>
    public Tensor Sample(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext? context = null)
    {
        if (sigmas.Count < 2) throw new ArgumentException("a sampler needs at least two sigmas (one step)", nameof(sigmas));
        using (no_grad())
        {
            return Run(model, x, sigmas, context ?? new SamplerContext());
        }
    }

    protected abstract Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context);

    /// <summary>k-diffusion <c>to_d</c>: the ODE derivative (x - D)/sigma.</summary>
    protected static Tensor ToD(Tensor x, double sigma, Tensor denoised) => (x - denoised) / sigma;

    /// <summary>k-diffusion <c>get_ancestral_step</c>: the deterministic target sigma_down and the noise amount sigma_up.</summary>
    public static (double Down, double Up) AncestralStep(double sigmaFrom, double sigmaTo, double eta)
    {
        if (eta == 0.0) return (sigmaTo, 0.0);
        double up = Math.Min(sigmaTo, eta * Math.Sqrt(sigmaTo * sigmaTo * (sigmaFrom * sigmaFrom - sigmaTo * sigmaTo) / (sigmaFrom * sigmaFrom)));
        double down = Math.Sqrt(sigmaTo * sigmaTo - up * up);
        return (down, up);
    }

    protected static Tensor DrawNoise(SamplerContext context, Tensor like)
    {
        if (context.AncestralNoise is null) throw new InvalidOperationException("this sampler is ancestral and needs SamplerContext.AncestralNoise");
        var noise = context.AncestralNoise();
        if (!noise.shape.SequenceEqual(like.shape))
            throw new InvalidOperationException($"ancestral noise has shape [{string.Join(", ", noise.shape)}], latents [{string.Join(", ", like.shape)}]");
        return noise.to(like.dtype, like.device);
    }

    protected static BrownianNoiseSampler CreateBrownianNoise(SamplerContext context, IReadOnlyList<double> sigmas) =>
        (context.BrownianNoise ?? throw new InvalidOperationException("this sampler is an SDE sampler and needs SamplerContext.BrownianNoise"))(sigmas);

    protected static void Report(SamplerContext context, int index, IReadOnlyList<double> sigmas, Tensor x, Tensor denoised) =>
        Report(context, index, sigmas.Count - 1, sigmas[index], x, denoised);

    protected static void Report(SamplerContext context, int index, int total, double sigma, Tensor x, Tensor denoised)
    {
        context.Cancellation.ThrowIfCancellationRequested();
        context.Callback?.Invoke(new SamplerStep(index, total, sigma, x, denoised));
    }

    /// <summary>The row guidance a sampler that evaluates the model itself needs (CFG or plain conditioning).</summary>
    protected IRowGuidance RowGuidance(IGuidedDenoiser model) =>
        model as IRowGuidance ?? throw new InvalidOperationException($"{Name} evaluates the model itself and needs an {nameof(IRowGuidance)} denoiser (CfgDenoiser or ConditionedDenoiser)");

    /// <summary>Replaces the running latents, disposing the previous ones unless they are the caller's input.</summary>
    protected static Tensor Advance(Tensor current, Tensor next, Tensor input)
    {
        if (!ReferenceEquals(current, input)) current.Dispose();
        return next;
    }
}
