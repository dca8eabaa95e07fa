using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Training;

/// <summary>The frozen layer a trainable module wraps: its weight shape and, for a convolution, its stride and padding.</summary>
public sealed class WrappedLayer
{
    public WrappedLayer(long[] weightShape, Conv2d? convolution)
    {
        WeightShape = weightShape;
        Convolution = convolution;
    }

    /// <summary>[out, in] or [out, in, kh, kw].</summary>
    public long[] WeightShape { get; }
    public Conv2d? Convolution { get; }
    public bool IsConvolution => Convolution is not null;
    public long OutFeatures => WeightShape[0];
    public long InFeatures => WeightShape[1];

    /// <summary>kh·kw (1 for a linear layer or a 1x1 convolution).</summary>
    public long KernelElements => WeightShape.Skip(2).Aggregate(1L, (a, b) => a * b);

    /// <summary>The layer's own operation with another weight (no bias): what a weight change does to its output.</summary>
    public Tensor Apply(Tensor input, Tensor weight) => Convolution is { } conv
        ? F.conv2d(input, weight, strides: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups)
        : F.linear(input, weight);
}

/// <summary>
/// One trainable network module (kohya LoRA / LyCORIS LoCon, LoHa, LoKr): its parameters under their file suffixes,
/// the weight change they make, and the branch that adds that change's effect to the wrapped layer's output while
/// training (<c>org_forward(x) + op(x, ΔW) · multiplier</c>, LyCORIS's forward). Only its parameters require
/// gradients; the wrapped layer stays frozen.
/// </summary>
public abstract class TrainableNetworkModule : IDisposable
{
    protected TrainableNetworkModule(string name, string layerPath, bool isTextEncoder, WrappedLayer layer, int rank, double alpha)
    {
        Name = name;
        LayerPath = layerPath;
        IsTextEncoder = isTextEncoder;
        Layer = layer;
        Rank = rank;
        Alpha = alpha;
    }

    /// <summary>kohya name, e.g. <c>lora_unet_down_blocks_1_attentions_0_proj_in</c>.</summary>
    public string Name { get; }

    /// <summary>The wrapped layer's checkpoint path (without <c>.weight</c>).</summary>
    public string LayerPath { get; }

    public bool IsTextEncoder { get; }
    public WrappedLayer Layer { get; }
    public bool IsConvolution => Layer.IsConvolution;

    /// <summary>The module's rank (LyCORIS <c>lora_dim</c>).</summary>
    public int Rank { get; }

    /// <summary>The <c>.alpha</c> written to the file.</summary>
    public double Alpha { get; }

    /// <summary>The factor on the raw product (alpha / rank, as LyCORIS and the engine's loader compute it).</summary>
    public virtual double Scale => Alpha / Rank;

    /// <summary>kohya's multiplier (1 while training).</summary>
    public double Multiplier { get; set; } = 1.0;

    /// <summary>The file's name for this kind of module ("lora", "loha", "lokr").</summary>
    public abstract string Algorithm { get; }

    /// <summary>The trainable tensors by file suffix (<c>lora_down.weight</c>, <c>hada_w1_a</c>, ...), in a fixed order.</summary>
    public abstract IReadOnlyList<(string Suffix, Parameter Parameter)> Parameters { get; }

    /// <summary>Every trainable tensor by its full file name.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters() => Parameters.Select(p => (Name + "." + p.Suffix, p.Parameter));

    protected ScalarType DType => Parameters[0].Parameter.dtype;

    /// <summary>The change of the wrapped weight at multiplier 1 (scale included), shaped like the weight, in the module's dtype.</summary>
    public abstract Tensor DeltaWeight();

    /// <summary>
    /// What the module adds to the wrapped layer's output for <paramref name="input"/>, computed in the module's own
    /// precision (float32 master weights under a bf16 model; float64 for finite-difference checks).
    /// </summary>
    public virtual Tensor Branch(Tensor input)
    {
        using var x = input.dtype == DType ? input.alias() : input.to(DType);
        using var delta = DeltaWeight();
        using var output = Layer.Apply(x, delta);
        return output.mul(Multiplier);
    }

    /// <summary>kaiming_uniform_(a=√5) as torch initialises it: U(−1/√fan_in, 1/√fan_in), fan_in = the size of dim 1 times the kernel.</summary>
    protected static Parameter KaimingUniform(long[] shape, Generator generator, ScalarType dtype)
    {
        long fanIn = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        double bound = 1.0 / Math.Sqrt(fanIn);
        using var uniform = rand(shape, ScalarType.Float32, generator: generator);
        using var scaled = uniform.mul(2 * bound).sub_(bound);
        return new Parameter(scaled.to(dtype), requires_grad: true);
    }

    protected static Parameter Normal(long[] shape, double std, Generator generator, ScalarType dtype)
    {
        using var normal = randn(shape, ScalarType.Float32, generator: generator);
        using var scaled = normal.mul(std);
        return new Parameter(scaled.to(dtype), requires_grad: true);
    }

    protected static Parameter Zeros(long[] shape, ScalarType dtype) => new(zeros(shape, dtype), requires_grad: true);

    public void Dispose()
    {
        foreach (var (_, p) in Parameters) p.Dispose();
        GC.SuppressFinalize(this);
    }
}
