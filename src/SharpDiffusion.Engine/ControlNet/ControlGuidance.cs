namespace SharpDiffusion.Engine.ControlNet;

/// <summary>How the guidance window (start/end as fractions of the steps) is counted.</summary>
public enum ControlGuidanceRule
{
    /// <summary>
    /// sd-webui-controlnet (the default): at the model call of step i the progress is
    /// <c>max(i − 1, 0) / steps</c> (A1111 advances <c>state.sampling_step</c> after each step); off when it is
    /// below start or above end.
    /// </summary>
    WebUiExtension,

    /// <summary>diffusers' ControlNet pipelines: off when <c>i / steps &lt; start</c> or <c>(i + 1) / steps &gt; end</c>.</summary>
    Diffusers,
}

/// <summary>Whether a ControlNet applies at a sampling step (tests/data/golden/ext/README.md §2.3).</summary>
public static class ControlGuidance
{
    /// <param name="step">The step index, 0-based (every model call of a multi-call sampler step uses the same).</param>
    /// <param name="steps">Sampling steps in total.</param>
    /// <param name="start">Guidance start, fraction 0..1.</param>
    /// <param name="end">Guidance end, fraction 0..1.</param>
    /// <param name="rule">Which counting to use.</param>
    public static bool IsActive(int step, int steps, double start, double end, ControlGuidanceRule rule = ControlGuidanceRule.WebUiExtension)
    {
        if (steps <= 0) throw new ArgumentException($"steps {steps} must be positive");
        if (rule == ControlGuidanceRule.Diffusers) return !((double)step / steps < start || (double)(step + 1) / steps > end);
        double progress = (double)Math.Max(step - 1, 0) / steps;
        return !(progress < start || progress > end);
    }

    /// <summary>
    /// The weight of each of a unit's <paramref name="residuals"/> (input blocks, then the middle block): control mode
    /// "Balanced" gives every one the unit's weight; in the hires. fix pass the extension forces its soft weights on
    /// canny and mlsd maps (hook.py: "use the soft weights with high-res fix can significantly reduce artifacts"),
    /// <c>weight · 0.825^(12 − i)</c> for residual i, its 13 SD1/SD2 scales zipped with the residuals from the first
    /// (as it cuts them to 10 for SDXL).
    /// </summary>
    public static IReadOnlyList<double> Scales(ControlUnit unit, int residuals, bool hiresPass)
    {
        bool soft = hiresPass && (unit.Module.Contains("canny", StringComparison.Ordinal) || unit.Module.Contains("mlsd", StringComparison.Ordinal));
        if (soft && residuals > SoftInjectionResiduals)
            throw new ArgumentException($"the extension's soft weights cover {SoftInjectionResiduals} ControlNet residuals, this ControlNet has {residuals}");
        return Enumerable.Range(0, residuals).Select(i => soft ? unit.Weight * Math.Pow(0.825, SoftInjectionResiduals - 1 - i) : unit.Weight).ToList();
    }

    /// <summary>The number of soft-injection scales the extension lists (SD1/SD2 ControlNets' residuals).</summary>
    public const int SoftInjectionResiduals = 13;
}
