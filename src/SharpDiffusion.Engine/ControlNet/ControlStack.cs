using static TorchSharp.torch;

namespace SharpDiffusion.Engine.ControlNet;

/// <summary>One ControlNet evaluation, as <see cref="ControlStack.Applied"/> reports it.</summary>
/// <param name="Unit">The unit's index in the job.</param>
/// <param name="HiresPass">Whether it was the hires. fix second pass.</param>
/// <param name="Step">The pass's step counter the guidance window was checked with (<see cref="ControlStack.CurrentStep"/>).</param>
/// <param name="Scales">The weight each residual was multiplied by (input blocks, then the middle block).</param>
public sealed record ControlApplication(int Unit, bool HiresPass, int Step, int HintWidth, int HintHeight, IReadOnlyList<double> Scales);

/// <summary>
/// The ControlNets of one generation as the U-Net calls them: at each model call the residuals of every unit whose
/// guidance window covers the current step (sd-webui-controlnet's rule, <see cref="ControlGuidance"/>), computed on all
/// rows (cond and uncond, control mode "Balanced") with the same hint, scaled by the weight and summed. For a hires.
/// fix, <see cref="BeginHiresPass"/> switches to the hints made for the second pass's size, restarts the step counter
/// over that pass's steps and, for canny and mlsd maps, uses the extension's forced soft weights.
/// </summary>
public sealed class ControlStack : IDisposable
{
    private sealed record Entry(LoadedControlNet Net, ControlUnit Unit, Tensor Hint, Tensor? HiresHint);

    private readonly List<Entry> _units = new();

    /// <param name="steps">Sampling steps of the first pass (the extension's progress denominator).</param>
    public ControlStack(int steps) => Steps = steps;

    /// <summary>The current pass's progress denominator: A1111's <c>state.sampling_steps</c>.</summary>
    public int Steps { get; private set; }

    /// <summary>Steps finished so far; the sampler callback advances it (A1111 sets <c>state.sampling_step</c> there).</summary>
    public int CurrentStep { get; set; }

    /// <summary>Whether the hires. fix second pass is running (<see cref="BeginHiresPass"/>).</summary>
    public bool InHiresPass { get; private set; }

    /// <summary>Every ControlNet evaluation, after it ran (an observation seam: sizes, steps, weights).</summary>
    public event Action<ControlApplication>? Applied;

    /// <summary>Takes ownership of <paramref name="net"/>.</summary>
    /// <param name="hint">The map fitted to the first pass's size, [3, height, width] planes.</param>
    /// <param name="hiresHint">The map fitted to the hires. fix size (null: no second pass).</param>
    public void Add(LoadedControlNet net, ControlUnit unit, float[] hint, int width, int height, float[]? hiresHint = null, int hiresWidth = 0, int hiresHeight = 0)
    {
        var low = tensor(hint, new long[] { 1, 3, height, width }).DetachFromDisposeScope();
        var high = hiresHint == null ? null : tensor(hiresHint, new long[] { 1, 3, hiresHeight, hiresWidth }).DetachFromDisposeScope();
        _units.Add(new Entry(net, unit, low, high));
    }

    /// <summary>
    /// The hires. fix second pass starts: its hints, and the step counter from 0 over its
    /// <paramref name="steps"/> (A1111's <c>launch_sampling</c> resets <c>state.sampling_step</c> and sets
    /// <c>state.sampling_steps</c> for every sampling run).
    /// </summary>
    public void BeginHiresPass(int steps)
    {
        if (_units.Any(u => u.HiresHint is null)) throw new InvalidOperationException("the ControlNets were loaded without hires. fix hints");
        InHiresPass = true;
        Steps = steps;
        CurrentStep = 0;
    }

    /// <summary>Summed residuals for the U-Net input <paramref name="x"/> (latent channels only), or null when no unit is active.</summary>
    public ControlResiduals? Residuals(Tensor x, Tensor timesteps, Tensor context)
    {
        var parts = new List<ControlResiduals>();
        try
        {
            for (int index = 0; index < _units.Count; index++)
            {
                var (net, unit, low, high) = _units[index];
                if (!ControlGuidance.IsActive(CurrentStep, Steps, unit.GuidanceStart, unit.GuidanceEnd)) continue;
                var hint = InHiresPass ? high! : low;
                using var rows = hint.to(x.device).expand(x.shape[0], -1, -1, -1);
                using var residuals = net.Model.Forward(x, timesteps, context, rows);
                var scales = ControlGuidance.Scales(unit, residuals.Count, InHiresPass);
                parts.Add(residuals.Scale(scales));
                Applied?.Invoke(new ControlApplication(index, InHiresPass, CurrentStep, (int)hint.shape[3], (int)hint.shape[2], scales));
            }
            return parts.Count == 0 ? null : parts.Count == 1 ? parts[0] : ControlResiduals.Sum(parts);
        }
        finally
        {
            if (parts.Count > 1) foreach (var part in parts) part.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var (net, _, low, high) in _units)
        {
            low.Dispose();
            high?.Dispose();
            net.Dispose();
        }
        _units.Clear();
    }
}
