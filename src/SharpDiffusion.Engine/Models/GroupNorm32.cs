using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// GroupNorm with affine "weight"/"bias" whose statistics are float32 and whose result has the input's dtype,
/// as LDM's GroupNorm32 (<c>super().forward(x.float()).type(x.dtype)</c>). For bf16 input with bf16 parameters
/// libtorch's CPU kernel already accumulates mean/variance in float32 (its opmath type), so no copies are made;
/// only mixed dtypes are converted.
/// </summary>
public sealed class GroupNorm32 : NamedModule
{
    private readonly long _groups;
    private readonly double _eps;

    public GroupNorm32(long groups, long channels, double eps, LayerFactory factory) : base(nameof(GroupNorm32))
    {
        _groups = groups;
        _eps = eps;
        var device = factory.Device ?? CPU;
        var dtype = factory.DType ?? ScalarType.Float32;
        register_parameter("weight", new Parameter(ones(channels, dtype: dtype, device: device), requires_grad: false));
        register_parameter("bias", new Parameter(zeros(channels, dtype: dtype, device: device), requires_grad: false));
    }

    public Parameter Weight => get_parameter("weight")!;
    public Parameter Bias => get_parameter("bias")!;

    public Tensor Forward(Tensor x)
    {
        var weight = Weight;
        var bias = Bias;
        if (x.dtype == weight.dtype)
            return nn.functional.group_norm(x, _groups, weight, bias, _eps);
        using var xf = x.to(ScalarType.Float32);
        using var wf = weight.to(ScalarType.Float32);
        using var bf = bias.to(ScalarType.Float32);
        using var y = nn.functional.group_norm(xf, _groups, wf, bf, _eps);
        return y.to(x.dtype);
    }
}
