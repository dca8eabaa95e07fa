using static TorchSharp.torch;

namespace SharpDiffusion.Engine.ControlNet;

/// <summary>
/// A ControlNet's outputs for one model call: one tensor per U-Net input block, then the middle block's, to pass to
/// <see cref="Models.UNetModel.Forward(Tensor, Tensor, Tensor, Tensor?, IReadOnlyList{Tensor}?)"/>. Owns its tensors.
/// </summary>
public sealed class ControlResiduals : IDisposable
{
    public ControlResiduals(IReadOnlyList<Tensor> residuals) => Residuals = residuals;

    public IReadOnlyList<Tensor> Residuals { get; }

    public int Count => Residuals.Count;

    public Tensor this[int index] => Residuals[index];

    /// <summary>Every residual times the control weight (sd-webui-controlnet "Balanced": control_scales = [weight]·13).</summary>
    public ControlResiduals Scale(double weight) => new(Residuals.Select(r => r.mul(weight)).ToList());

    /// <summary>Each residual times its own weight (the extension's <c>control_scales</c>, one per residual).</summary>
    public ControlResiduals Scale(IReadOnlyList<double> scales)
    {
        if (scales.Count != Count) throw new ArgumentException($"{scales.Count} control scales for {Count} residuals");
        return new(Residuals.Select((r, i) => r.mul(scales[i])).ToList());
    }

    /// <summary>
    /// Residuals of several ControlNets applied together are summed (the extension and diffusers' MultiControlNet);
    /// null entries are skipped; null when none is left.
    /// </summary>
    public static ControlResiduals? Sum(IEnumerable<ControlResiduals?> parts)
    {
        List<Tensor>? total = null;
        foreach (var part in parts)
        {
            if (part == null) continue;
            if (total == null)
            {
                total = part.Residuals.Select(r => r.clone()).ToList();
                continue;
            }
            if (part.Count != total.Count) throw new ArgumentException($"ControlNets with {part.Count} and {total.Count} residuals cannot be combined");
            for (int i = 0; i < total.Count; i++) total[i].add_(part[i].to(total[i].dtype));
        }
        return total == null ? null : new ControlResiduals(total);
    }

    public void Dispose()
    {
        foreach (var r in Residuals) r.Dispose();
    }
}
