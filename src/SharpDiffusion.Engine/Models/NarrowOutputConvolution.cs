using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// The output convolutions (U-Net <c>out.2</c>: 320 -> 4, VAE <c>conv_out</c>: 128 -> 3 and 512 -> 8) in bf16. libtorch
/// 2.10's CPU bf16 kernel for convolutions with a kernel larger than 1x1 and an output channel count that is not a
/// multiple of 16 returns results 5-75% (rms) away from the same convolution in float32 on the same rounded inputs
/// (measured here; 1x1 kernels and multiples of 16 are right to bf16's 0.2%), which made every bf16 U-Net output
/// ~30% wrong. Such convolutions run in float32 (they are tiny: a few output channels) and return the input's type.
/// </summary>
public static class NarrowOutputConvolution
{
    public static Tensor Forward(Conv2d conv, Tensor x)
    {
        var weight = conv.weight!;
        bool affected = x.dtype == ScalarType.BFloat16 && weight.shape[0] % 16 != 0 && (weight.shape[2] > 1 || weight.shape[3] > 1);
        if (!affected) return conv.forward(x);
        using var scope = NewDisposeScope();
        var result = F.conv2d(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), conv.bias?.to(ScalarType.Float32),
            strides: conv.stride, padding: conv.padding, dilation: conv.dilation, groups: conv.groups).to(x.dtype);
        return result.MoveToOuterDisposeScope();
    }
}
