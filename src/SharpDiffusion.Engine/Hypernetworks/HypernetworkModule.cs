using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Hypernetworks;

/// <summary>
/// One side (k or v) of a hypernetwork for inputs of width <see cref="Width"/> (A1111's <c>HypernetworkModule</c>,
/// inference only): <c>y = x + linear(x) · strength</c>, where <c>linear</c> is a Sequential of, per layer,
/// Linear, the activation (not after the last unless activate_output), LayerNorm (eps 1e-5) if enabled, and Dropout
/// (identity here) where the dropout structure has one. Parameter names are A1111's: <c>linear.&lt;index&gt;.weight/bias</c>.
/// </summary>
public sealed class HypernetworkModule : nn.Module<Tensor, Tensor>
{
    /// <summary>Names of the first hypernetwork files (two Linears, no activation) and their Sequential names.</summary>
    private static readonly Dictionary<string, string> OldNames = new(StringComparer.Ordinal)
    {
        ["linear.0.weight"] = "linear1.weight",
        ["linear.0.bias"] = "linear1.bias",
        ["linear.1.weight"] = "linear2.weight",
        ["linear.1.bias"] = "linear2.bias",
    };

#pragma warning disable IDE1006 // field name = state-dict name
    private readonly nn.Module<Tensor, Tensor> linear;
#pragma warning restore IDE1006

    public HypernetworkModule(int width, HypernetworkStructure structure) : base(nameof(HypernetworkModule))
    {
        var problem = structure.Problem();
        if (problem is not null) throw new ArgumentException(problem, nameof(structure));
        Width = width;
        var ls = structure.LayerStructure;
        var layers = new List<nn.Module<Tensor, Tensor>>();
        for (int i = 0; i < ls.Count - 1; i++)
        {
            int inFeatures = (int)(width * ls[i]), outFeatures = (int)(width * ls[i + 1]); // Python int(): truncation
            layers.Add(nn.Linear(inFeatures, outFeatures, hasBias: true));
            bool last = i == ls.Count - 2;
            if (HypernetworkActivation.AddsLayer(structure.ActivationFunc) && (!last || structure.ActivateOutput))
                layers.Add(HypernetworkActivation.Create(structure.ActivationFunc!));
            if (structure.IsLayerNorm) layers.Add(nn.LayerNorm(outFeatures, 1e-5));
            if (structure.DropoutStructure[i + 1] > 0) layers.Add(nn.Dropout(structure.DropoutStructure[i + 1]));
        }
        linear = nn.Sequential(layers.Select((m, i) => (i.ToString(System.Globalization.CultureInfo.InvariantCulture), m)).ToArray());
        RegisterComponents();
        eval();
        foreach (var p in parameters()) p.requires_grad = false;
    }

    /// <summary>The input width this module applies to.</summary>
    public int Width { get; }

    /// <summary>Strength 1 (A1111's default multiplier).</summary>
    public override Tensor forward(Tensor x) => Apply(x, 1.0);

    /// <summary><c>x + linear(x) · strength</c>.</summary>
    public Tensor Apply(Tensor x, double strength)
    {
        using var scope = NewDisposeScope();
        var y = x + linear.forward(x) * strength;
        return y.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Loads the parameters from <paramref name="file"/> tensors named <paramref name="prefix"/> + state-dict name
    /// (or the old <c>linear1</c>/<c>linear2</c> names); every parameter must be present with its shape.
    /// </summary>
    /// <returns>The file keys that were used.</returns>
    internal IReadOnlyList<string> Load(IModelFile file, string prefix, IReadOnlyDictionary<string, TensorInfo> tensors)
    {
        var used = new List<string>();
        var problems = new List<string>();
        using (no_grad())
        {
            foreach (var (name, target) in state_dict())
            {
                if (!tensors.TryGetValue(prefix + name, out var info)
                    && !(OldNames.TryGetValue(name, out var old) && tensors.TryGetValue(prefix + old, out info)))
                {
                    problems.Add($"missing {prefix}{name}");
                    continue;
                }
                if (!info.Shape.SequenceEqual(target.shape))
                {
                    problems.Add($"{info.Name} is {info.ShapeText}, the layer structure needs [{string.Join(", ", target.shape)}]");
                    continue;
                }
                if (!info.DType.IsFloatingPoint())
                {
                    problems.Add($"{info.Name} is {info.DType}, not floating point");
                    continue;
                }
                using var loaded = TensorReading.Read(file, info, target.dtype);
                target.copy_(loaded);
                used.Add(info.Name);
            }
        }
        if (problems.Count > 0)
            throw new InvalidModelFileException(file.Path, "hypernetwork weights do not match its layer structure: " + string.Join("; ", problems.Take(6)) + (problems.Count > 6 ? $"; ... ({problems.Count - 6} more)" : ""));
        return used;
    }
}
