using SharpDiffusion.Engine.Hypernetworks;
using SharpDiffusion.Engine.Models;
using TorchSharp.Modules;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// A1111 hypernetwork training's model side: <c>Hypernetwork.train()</c> makes every Linear (and LayerNorm) parameter
/// trainable and applies each module as <c>x + linear(x)</c> (the strength multiplier is ignored while training), on
/// the keys and values of every attention layer. Disposing puts the U-Net back.
/// </summary>
public sealed class HypernetworkTraining : IDisposable
{
    private readonly UNetModel _unet;
    private readonly IAttentionContextHook? _previousHook;

    public HypernetworkTraining(UNetModel unet, Hypernetwork network)
    {
        _unet = unet;
        _previousHook = unet.ContextHook;
        var parameters = new List<(string, Parameter)>();
        foreach (int width in network.Widths.Order())
        {
            var (k, v) = network.ForWidth(width)!.Value;
            foreach (var (side, module) in new[] { ("k", k), ("v", v) })
            {
                foreach (var (name, p) in module.named_parameters())
                {
                    p.requires_grad = true;
                    parameters.Add(($"{width}.{side}.{name}", p));
                }
            }
        }
        Parameters = parameters;
        unet.ContextHook = new HypernetworkStack([(network, 1.0)]); // training strength 1, as A1111's train mode
    }

    /// <summary>Every trainable tensor as A1111's file names it: <c>&lt;width&gt;.&lt;k|v&gt;.linear.&lt;i&gt;.weight</c>.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; }

    public void Dispose()
    {
        _unet.ContextHook = _previousHook;
        foreach (var (_, p) in Parameters) p.requires_grad = false;
    }
}
