using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// A LyCORIS <c>LokrModule</c> being trained with its defaults (factor −1, no decompose_both, no Tucker core): the
/// output and input sizes split as <see cref="Factorization"/> does, <c>lokr_w1</c> [out_l, in_m] always full, and
/// <c>lokr_w2</c> [out_k, in_n(, kh, kw)] full when rank ≥ max(out_k, in_n)/2, else <c>lokr_w2_a</c> [out_k, r] ·
/// <c>lokr_w2_b</c> [r, in_n·kh·kw]. ΔW = w1 ⊗ w2 · scale, with scale 1 when both factors are full (LyCORIS then
/// writes alpha = rank) and alpha/rank otherwise.
/// </summary>
public sealed class TrainableLoKrModule : TrainableNetworkModule
{
    private readonly (string, Parameter)[] _parameters;
    private readonly bool _lowRank;

    public TrainableLoKrModule(string name, string layerPath, bool isTextEncoder, WrappedLayer layer, int rank, double alpha,
        IReadOnlyList<(string Suffix, Parameter Parameter)> parameters)
        : base(name, layerPath, isTextEncoder, layer, rank, alpha)
    {
        _parameters = [.. parameters];
        _lowRank = parameters.Any(p => p.Suffix is "lokr_w2_a" or "lokr_w1_a");
        if (!parameters.Any(p => p.Suffix == "lokr_w1") || !(parameters.Any(p => p.Suffix == "lokr_w2") || _lowRank))
            throw new ArgumentException($"{name}: a LoKr module needs lokr_w1 and lokr_w2 or lokr_w2_a/lokr_w2_b");
    }

    /// <summary>
    /// LyCORIS's initialisation: a full <c>lokr_w2</c> zeros, else <c>lokr_w2_a</c> Kaiming-uniform and
    /// <c>lokr_w2_b</c> zeros; <c>lokr_w1</c> Kaiming-uniform (a = √5) — so ΔW starts at zero.
    /// </summary>
    public static TrainableLoKrModule Create(string name, string layerPath, bool isTextEncoder, WrappedLayer layer, int rank, double alpha,
        Generator generator, ScalarType dtype)
    {
        var (outL, outK) = Factorization(layer.OutFeatures);
        var (inM, inN) = Factorization(layer.InFeatures);
        var kernel = layer.WeightShape[2..];
        var parameters = new List<(string, Parameter)>();
        bool fullW2 = rank >= Math.Max(outK, inN) / 2.0;
        if (fullW2)
        {
            parameters.Add(("lokr_w2", Zeros([outK, inN, .. kernel], dtype)));
        }
        else
        {
            parameters.Add(("lokr_w2_a", KaimingUniform([outK, rank], generator, dtype)));
            parameters.Add(("lokr_w2_b", Zeros([rank, inN * layer.KernelElements], dtype)));
        }
        parameters.Insert(0, ("lokr_w1", KaimingUniform([outL, inM], generator, dtype)));
        // LyCORIS: with both factors full the scale is 1, stored as alpha = rank.
        return new TrainableLoKrModule(name, layerPath, isTextEncoder, layer, rank, fullW2 ? rank : alpha, parameters);
    }

    /// <summary>
    /// LyCORIS <c>factorization(dimension, factor=-1)</c>: the most balanced split m·n = dimension (m ≤ n), found by
    /// walking m up through the divisors (128 → 8·16, 320 → 16·20, 768 → 24·32, 127 → 1·127).
    /// </summary>
    public static (long M, long N) Factorization(long dimension)
    {
        long m = 1, n = dimension, length = m + n;
        while (m < n)
        {
            long newM = m + 1;
            while (dimension % newM != 0) newM++;
            long newN = dimension / newM;
            if (newM + newN > length) break;
            (m, n) = (newM, newN);
        }
        return m > n ? (n, m) : (m, n);
    }

    public override string Algorithm => "lokr";
    public override IReadOnlyList<(string Suffix, Parameter Parameter)> Parameters => _parameters;

    /// <summary>alpha/rank when a factor is low-rank; 1 with two full factors (LyCORIS, and the engine's loader).</summary>
    public override double Scale => _lowRank ? Alpha / Rank : 1.0;

    private Tensor Part(string suffix) => _parameters.First(p => p.Item1 == suffix).Item2;

    public override Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        var w1 = Part("lokr_w1");
        var w2 = _lowRank ? Part("lokr_w2_a").mm(Part("lokr_w2_b")) : Part("lokr_w2");
        while (w1.dim() < w2.dim()) w1 = w1.unsqueeze(-1);
        var product = kron(w1.contiguous(), w2.contiguous());
        return product.reshape(Layer.WeightShape).mul(Scale).MoveToOuterDisposeScope();
    }
}
