using SharpDiffusion.Engine.Models;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Hypernetworks;

/// <summary>
/// The hypernetworks active for a generation, each with its strength, in order (A1111's
/// <c>shared.loaded_hypernetworks</c>); the <see cref="IAttentionContextHook"/> every U-Net attention calls.
/// </summary>
public sealed class HypernetworkStack : IAttentionContextHook
{
    public HypernetworkStack(IReadOnlyList<(Hypernetwork Network, double Strength)> networks) => Networks = networks.ToArray();

    public IReadOnlyList<(Hypernetwork Network, double Strength)> Networks { get; }

    public (Tensor K, Tensor V) Transform(Tensor context) => ApplyToContext(Networks, context);

    /// <summary>
    /// A1111's <c>apply_hypernetworks</c>: K = V = context; for each hypernetwork in order that has modules for
    /// the context's last dimension, K = k(K), V = v(V) at its strength. Without any, both are the context itself.
    /// </summary>
    /// <returns>New tensors (aliases of <paramref name="context"/> when nothing applies); the caller disposes them.</returns>
    public static (Tensor K, Tensor V) ApplyToContext(IReadOnlyList<(Hypernetwork Network, double Strength)> networks, Tensor context)
    {
        using var scope = NewDisposeScope();
        int width = (int)context.shape[^1];
        var k = context.alias();
        var v = context.alias();
        foreach (var (network, strength) in networks)
        {
            if (network.ForWidth(width) is not { } modules) continue;
            k = modules.K.Apply(k, strength);
            v = modules.V.Apply(v, strength);
        }
        return (k.MoveToOuterDisposeScope(), v.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// What will not apply on a model whose attention inputs have <paramref name="attentionWidths"/> (the context
    /// width and the transformer channel widths): one line per hypernetwork with no matching width (it changes
    /// nothing), or with widths the model never uses. A1111 silently skips those; this says so instead.
    /// </summary>
    public IReadOnlyList<string> Check(IEnumerable<int> attentionWidths)
    {
        var modelWidths = attentionWidths.Distinct().Order().ToArray();
        var warnings = new List<string>();
        foreach (var (network, _) in Networks)
        {
            var unused = network.Widths.Where(w => !modelWidths.Contains(w)).ToArray();
            if (unused.Length == 0) continue;
            string has = $"hypernetwork {network.Name} has layers for widths {string.Join(", ", network.Widths)}, this model's attention widths are {string.Join(", ", modelWidths)}";
            warnings.Add(unused.Length == network.Widths.Count
                ? $"{has}: it has no effect on this model"
                : $"{has}: the layers for {string.Join(", ", unused)} are not used");
        }
        return warnings;
    }
}
