using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// A LyCORIS <c>LohaModule</c> being trained (no Tucker core): <c>hada_w1_a</c>, <c>hada_w2_a</c> [out, r] and
/// <c>hada_w1_b</c>, <c>hada_w2_b</c> [r, in·kh·kw]; ΔW = (w1_a·w1_b) ⊙ (w2_a·w2_b) · alpha/rank, reshaped to the
/// weight, applied with the layer's own operation.
/// </summary>
public sealed class TrainableLoHaModule : TrainableNetworkModule
{
    private readonly (string, Parameter)[] _parameters;

    public TrainableLoHaModule(string name, string layerPath, bool isTextEncoder, WrappedLayer layer,
        Parameter w1a, Parameter w1b, Parameter w2a, Parameter w2b, double alpha)
        : base(name, layerPath, isTextEncoder, layer, (int)w1b.shape[0], alpha)
    {
        _parameters = [("hada_w1_a", w1a), ("hada_w1_b", w1b), ("hada_w2_a", w2a), ("hada_w2_b", w2b)];
    }

    /// <summary>
    /// LyCORIS's initialisation, in its order: w1_b ~ N(0, 1), w1_a ~ N(0, 0.1²), w2_b ~ N(0, 1), w2_a = 0 (so ΔW
    /// starts at zero and w2_a receives the first gradient).
    /// </summary>
    public static TrainableLoHaModule Create(string name, string layerPath, bool isTextEncoder, WrappedLayer layer, int rank, double alpha,
        Generator generator, ScalarType dtype)
    {
        long outDim = layer.OutFeatures, inDim = layer.InFeatures * layer.KernelElements;
        var w1b = Normal([rank, inDim], 1.0, generator, dtype);
        var w1a = Normal([outDim, rank], 0.1, generator, dtype);
        var w2b = Normal([rank, inDim], 1.0, generator, dtype);
        var w2a = Zeros([outDim, rank], dtype);
        return new TrainableLoHaModule(name, layerPath, isTextEncoder, layer, w1a, w1b, w2a, w2b, alpha);
    }

    public override string Algorithm => "loha";
    public override IReadOnlyList<(string Suffix, Parameter Parameter)> Parameters => _parameters;

    public override Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        var p = _parameters;
        var product = p[0].Item2.mm(p[1].Item2).mul(p[2].Item2.mm(p[3].Item2));
        return product.reshape(Layer.WeightShape).mul(Scale).MoveToOuterDisposeScope();
    }
}
