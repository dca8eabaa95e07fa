namespace SharpDiffusion.Engine.Sampling;

/// <summary>A1111's img2img step selection (<c>setup_img2img_steps</c>, default settings).</summary>
public static class Img2ImgSchedule
{
    /// <summary>
    /// The tail of a full <paramref name="steps"/>-step sigma list that an img2img run of
    /// <paramref name="strength"/> walks: <c>t_enc = int(min(strength, 0.999)·steps)</c>, sigmas[steps - t_enc - 1 :],
    /// i.e. t_enc + 1 steps. Start from <c>init + noise·tail[0]</c> (<see cref="Sampler.Img2ImgLatent"/>).
    /// </summary>
    public static double[] Tail(IReadOnlyList<double> fullSigmas, double strength)
    {
        if (!(strength > 0 && strength <= 1)) throw new ArgumentOutOfRangeException(nameof(strength), strength, "denoising strength must be in (0, 1]");
        int steps = fullSigmas.Count - 1;
        int tEnc = (int)(Math.Min(strength, 0.999) * steps);
        return fullSigmas.Skip(steps - tEnc - 1).ToArray();
    }
}
