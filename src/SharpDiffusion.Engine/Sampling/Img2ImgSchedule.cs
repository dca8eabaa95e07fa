namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// An img2img run's steps as A1111's <c>setup_img2img_steps</c> gives them: the schedule's length and t_enc (the run
/// walks t_enc + 1 steps of its tail), and whether the caller asked for its steps (the hires. fix pass).
/// </summary>
public readonly record struct Img2ImgPlan(int ScheduleSteps, int TEnc, bool StepsRequested)
{
    /// <summary>
    /// The steps A1111 counts the run over (<c>launch_sampling(t_enc + 1, ...)</c> sets <c>state.sampling_steps</c>),
    /// the denominator of sd-webui-controlnet's guidance window.
    /// </summary>
    public int SamplingSteps => TEnc + 1;
}

/// <summary>A1111's img2img step selection (<c>setup_img2img_steps</c>, default settings).</summary>
public static class Img2ImgSchedule
{
    /// <summary>A1111's <c>t_enc = int(min(strength, 0.999)·steps)</c>: an img2img run walks t_enc + 1 steps.</summary>
    public static int EncodeSteps(int steps, double strength) => (int)(Math.Min(strength, 0.999) * steps);

    /// <summary>
    /// A1111's <c>setup_img2img_steps</c>: the schedule's length and t_enc. Plain img2img walks the tail of a
    /// <paramref name="steps"/>-step schedule (t_enc = int(min(strength, 0.999)·steps)); a run that asks for its steps
    /// (<paramref name="stepsRequested"/>: the hires. fix pass, which passes <c>hr_second_pass_steps or steps</c>) makes
    /// exactly that many over a schedule of <c>int(steps / min(strength, 0.999))</c> (t_enc = steps − 1).
    /// </summary>
    public static Img2ImgPlan Plan(int steps, double strength, bool stepsRequested) => stepsRequested
        ? new((int)(steps / Math.Min(strength, 0.999)), steps - 1, true)
        : new(steps, EncodeSteps(steps, strength), false);

    /// <summary>
    /// The tail of a full <paramref name="steps"/>-step sigma list that an img2img run of
    /// <paramref name="strength"/> walks: <c>t_enc = int(min(strength, 0.999)·steps)</c>, sigmas[steps - t_enc - 1 :],
    /// i.e. t_enc + 1 steps. Start from <c>init + noise·tail[0]</c> (<see cref="Sampler.Img2ImgLatent"/>).
    /// </summary>
    public static double[] Tail(IReadOnlyList<double> fullSigmas, double strength) =>
        Tail(fullSigmas, strength, EncodeSteps(fullSigmas.Count - 1, strength));

    /// <summary>The tail for a given t_enc (<see cref="Plan"/>): sigmas[steps − t_enc − 1 :], t_enc + 1 steps.</summary>
    public static double[] Tail(IReadOnlyList<double> fullSigmas, double strength, int tEnc)
    {
        if (!(strength > 0 && strength <= 1)) throw new ArgumentOutOfRangeException(nameof(strength), strength, "denoising strength must be in (0, 1]");
        int steps = fullSigmas.Count - 1;
        if (tEnc < 0 || tEnc >= steps) throw new ArgumentOutOfRangeException(nameof(tEnc), tEnc, $"t_enc must be in [0, {steps})");
        return fullSigmas.Skip(steps - tEnc - 1).ToArray();
    }

    /// <summary>
    /// A1111's <c>CompVisSampler.sample_img2img</c> for the samplers that run on DDIM timesteps (DDIM, DDIM CFG++, PLMS,
    /// UniPC), whose full list is σ(T[last]), …, σ(T[0]) (T = <c>range(0, 1000, 1000 // steps) + 1</c>, which has more than
    /// <paramref name="steps"/> entries when 1000 is not a multiple): <c>t_enc = int(min(strength,
    /// 0.999)·steps)</c>, the init latents noised to T[t_enc], then the sampler over <c>T[:t_enc]</c>. Returns σ(T[t_enc]),
    /// σ(T[t_enc−1]), …, σ(T[0]): the first sigma is the noise level only; the loop starts one timestep lower, at the
    /// second (<see cref="TimestepWalk"/>), as A1111 does.
    /// </summary>
    public static double[] TimestepTail(double[] sigmas, Img2ImgPlan plan, double strength, int minimumSteps, string samplerName)
    {
        if (!(strength > 0 && strength <= 1)) throw new ArgumentOutOfRangeException(nameof(strength), strength, "denoising strength must be in (0, 1]");
        int tEnc = plan.TEnc;
        if (tEnc < minimumSteps)
            throw new ArgumentException(plan.StepsRequested
                ? $"{samplerName} img2img needs at least {minimumSteps} denoising steps: {tEnc + 1} steps asked for make {tEnc}"
                : $"{samplerName} img2img needs at least {minimumSteps} denoising steps: int(strength {strength} x {plan.ScheduleSteps} steps) = {tEnc}");
        return sigmas[(sigmas.Length - 1 - tEnc)..];
    }

    /// <summary>The sigmas a timestep sampler walks: img2img drops the noise level that <see cref="TimestepTail"/> put first.</summary>
    public static IReadOnlyList<double> TimestepWalk(IReadOnlyList<double> sigmas, bool img2img) => img2img ? sigmas.Skip(1).ToArray() : sigmas;
}
