using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// A kohya <c>LoRAModule</c> / LyCORIS <c>LoConModule</c> being trained: <c>lora_down</c> [r, in] (a convolution's
/// [r, in, kh, kw] with the wrapped layer's stride and padding) and <c>lora_up</c> [out, r] (or [out, r, 1, 1]) whose
/// branch <c>up(down(x)) · multiplier · alpha/rank</c> is added to the wrapped layer's output.
/// </summary>
public sealed class TrainableLoraModule : TrainableNetworkModule
{
    private readonly (string, Parameter)[] _parameters;

    public TrainableLoraModule(string name, string layerPath, bool isTextEncoder, WrappedLayer layer, Parameter down, Parameter up, double alpha)
        : base(name, layerPath, isTextEncoder, layer, (int)down.shape[0], alpha)
    {
        Down = down;
        Up = up;
        _parameters = [("lora_down.weight", down), ("lora_up.weight", up)];
    }

    /// <summary>
    /// kohya's and LyCORIS's initialisation: <c>lora_down</c> Kaiming-uniform (a = √5) over in·kh·kw, <c>lora_up</c>
    /// zeros, so training starts from the base model.
    /// </summary>
    public static TrainableLoraModule Create(string name, string layerPath, bool isTextEncoder, WrappedLayer layer, int rank, double alpha,
        Generator generator, ScalarType dtype)
    {
        var s = layer.WeightShape;
        long[] downShape = layer.IsConvolution ? [rank, s[1], .. s[2..]] : [rank, s[1]];
        long[] upShape = layer.IsConvolution ? [s[0], rank, 1, 1] : [s[0], rank];
        return new TrainableLoraModule(name, layerPath, isTextEncoder, layer, KaimingUniform(downShape, generator, dtype), Zeros(upShape, dtype), alpha);
    }

    public Parameter Down { get; }
    public Parameter Up { get; }
    public override string Algorithm => "lora";
    public override IReadOnlyList<(string Suffix, Parameter Parameter)> Parameters => _parameters;

    public override Tensor DeltaWeight()
    {
        using var product = Up.flatten(1).mm(Down.flatten(1));
        using var shaped = product.reshape(Layer.WeightShape);
        return shaped.mul(Scale);
    }

    /// <summary>The factored branch (cheaper than forming ΔW): down with the layer's geometry, then up as a 1x1 map.</summary>
    public override Tensor Branch(Tensor input)
    {
        using var x = input.dtype == Down.dtype ? input.alias() : input.to(Down.dtype);
        using var low = IsConvolution ? Layer.Apply(x, Down) : F.linear(x, Down);
        using var high = IsConvolution ? F.conv2d(low, Up) : F.linear(low, Up);
        // Scalars held in locals: a temporary one can be freed while the native call reads it (see TrainingOptimizer.Arg).
        using var multiplier = Multiplier.ToScalar();
        using var scale = Scale.ToScalar();
        return high.mul(multiplier).mul_(scale);
    }
}
