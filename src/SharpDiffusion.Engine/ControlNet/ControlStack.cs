using static TorchSharp.torch;

namespace SharpDiffusion.Engine.ControlNet;

/// <summary>
/// The ControlNets of one sampling run as the U-Net calls them: at each model call the residuals of every unit whose
/// guidance window covers the current step (sd-webui-controlnet's rule, <see cref="ControlGuidance"/>), computed on all
/// rows (cond and uncond, control mode "Balanced") with the same hint, scaled by the weight and summed.
/// </summary>
public sealed class ControlStack : IDisposable
{
    private readonly List<(LoadedControlNet Net, Tensor Hint, ControlUnit Unit)> _units = new();

    /// <param name="steps">Sampling steps of the run (the extension's progress denominator).</param>
    public ControlStack(int steps) => Steps = steps;

    public int Steps { get; }

    /// <summary>Steps finished so far; the sampler callback advances it (A1111 sets <c>state.sampling_step</c> there).</summary>
    public int CurrentStep { get; set; }

    /// <summary>Takes ownership of <paramref name="net"/>.</summary>
    public void Add(LoadedControlNet net, ControlUnit unit)
    {
        var hint = tensor(unit.Hint, new long[] { 1, 3, unit.HintHeight, unit.HintWidth });
        _units.Add((net, hint.DetachFromDisposeScope(), unit));
    }

    /// <summary>Summed residuals for the U-Net input <paramref name="x"/> (latent channels only), or null when no unit is active.</summary>
    public ControlResiduals? Residuals(Tensor x, Tensor timesteps, Tensor context)
    {
        var parts = new List<ControlResiduals>();
        try
        {
            foreach (var (net, hint, unit) in _units)
            {
                if (!ControlGuidance.IsActive(CurrentStep, Steps, unit.GuidanceStart, unit.GuidanceEnd)) continue;
                using var rows = hint.to(x.device).expand(x.shape[0], -1, -1, -1);
                using var residuals = net.Model.Forward(x, timesteps, context, rows);
                parts.Add(residuals.Scale(unit.Weight));
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
        foreach (var (net, hint, _) in _units)
        {
            hint.Dispose();
            net.Dispose();
        }
        _units.Clear();
    }
}
