using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// LDM FeedForward with GEGLU: net.0.proj = Linear(dim, 2·inner) split into (value, gate),
/// value · GELU(gate) with exact (erf) GELU, then net.2 = Linear(inner, dim).
/// Its Linear/Conv layers are invoked with call() (not forward) so that forward hooks run: LoRA training adds its
/// trainable branch that way (Training/LoraTrainingHooks).
/// </summary>
public sealed class FeedForwardGeglu : NamedModule
{
    private readonly Linear _proj, _out;

    public FeedForwardGeglu(LayerFactory f, int dim, int mult = 4) : base(nameof(FeedForwardGeglu))
    {
        int inner = dim * mult;
        var net = Child("net", new IndexedModules());
        _proj = net.Add(0, new GegluProjection(f, dim, inner)).Proj;
        _out = net.Add(2, f.Linear(inner, dim));
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = _proj.call(x);
        var halves = h.chunk(2, -1);
        var gated = halves[0].mul(F.gelu(halves[1]));
        return _out.call(gated).MoveToOuterDisposeScope();
    }

    /// <summary>Holder that gives the projection its checkpoint name "net.0.proj".</summary>
    private sealed class GegluProjection : NamedModule
    {
        public GegluProjection(LayerFactory f, int dim, int inner) : base("GEGLU") => Proj = Child("proj", f.Linear(dim, inner * 2));

        public Linear Proj { get; }
    }
}
