using SharpDiffusion.Engine.Models;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// Runs a context hook whose weights are float32 on the CPU (hypernetworks as loaded) inside a U-Net of another
/// element type or device (bf16, CUDA): the context goes in as CPU float32 and K/V come back in the U-Net's type.
/// Float32 CPU contexts pass straight through.
/// </summary>
public sealed class Float32ContextHook(IAttentionContextHook inner) : IAttentionContextHook
{
    public (Tensor K, Tensor V) Transform(Tensor context)
    {
        if (context.dtype == ScalarType.Float32 && context.device_type == TorchSharp.DeviceType.CPU) return inner.Transform(context);
        using var scope = NewDisposeScope();
        var (k, v) = inner.Transform(context.to(ScalarType.Float32, CPU));
        return (k.to(context.dtype, context.device).MoveToOuterDisposeScope(), v.to(context.dtype, context.device).MoveToOuterDisposeScope());
    }
}
