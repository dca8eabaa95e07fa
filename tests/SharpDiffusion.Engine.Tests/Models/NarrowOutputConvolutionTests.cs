using SharpDiffusion.Engine.Models;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Models;

/// <summary>bf16 output convolutions (few output channels, 3x3) stay within bf16 rounding of the float32 result.</summary>
public class NarrowOutputConvolutionTests
{
    [Theory]
    [InlineData(320, 4, 3)]  // SD U-Net out.2
    [InlineData(128, 3, 3)]  // VAE decoder conv_out
    [InlineData(512, 8, 3)]  // VAE encoder conv_out
    [InlineData(32, 24, 3)]
    [InlineData(32, 4, 1)]   // 1x1: libtorch's own kernel
    [InlineData(32, 32, 3)]  // multiple of 16: libtorch's own kernel
    public void Bf16ResultIsWithinRoundingOfFloat32(int inChannels, int outChannels, int kernel)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(7);
        using var conv = nn.Conv2d(inChannels, outChannels, kernel, padding: kernel / 2);
        using (no_grad())
        {
            conv.weight!.copy_(randn(conv.weight.shape, generator: generator) * 0.05);
            conv.bias!.copy_(randn(outChannels, generator: generator) * 0.05);
        }
        // Inputs and weights already bf16-exact: the only difference left is the arithmetic.
        var x = randn(new long[] { 1, inChannels, 16, 16 }, generator: generator).to(ScalarType.BFloat16);
        using var half = nn.Conv2d(inChannels, outChannels, kernel, padding: kernel / 2, dtype: ScalarType.BFloat16);
        using (no_grad())
        {
            half.weight!.copy_(conv.weight!);
            half.bias!.copy_(conv.bias!);
            conv.weight!.copy_(half.weight!);
            conv.bias!.copy_(half.bias!);
        }
        var expected = conv.forward(x.to(ScalarType.Float32));
        var actual = NarrowOutputConvolution.Forward(half, x);
        Assert.Equal(ScalarType.BFloat16, actual.dtype);
        var rel = ((actual.to(ScalarType.Float32) - expected).square().mean().sqrt() / expected.square().mean().sqrt()).item<float>();
        Assert.True(rel < 0.005, $"{inChannels}->{outChannels} k{kernel}: bf16 differs by {rel:P2} of rms");
    }
}
