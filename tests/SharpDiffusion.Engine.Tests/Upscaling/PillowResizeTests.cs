using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Upscaling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Upscaling;

/// <summary>Pillow's 8-bit resampling against Pillow's own output stored in ext/inpaint_golden (the latent-mask resize).</summary>
public class PillowResizeTests
{
    [Fact]
    public void BicubicDownscaleReproducesPillowBitForBit()
    {
        using var golden = GoldenTensors.Open("ext/inpaint_golden.safetensors");
        using var scope = NewDisposeScope();
        // A1111: latent_mask.convert('RGB').resize((w, h)): Pillow's default BICUBIC, 32x32 -> 16x16 (channel 0 stored).
        var source = golden.Get("pre.mask_blurred_u8");
        var expected = golden.Get("pre.latmask_resized_u8");
        int w = (int)source.shape[3], h = (int)source.shape[2], nw = (int)expected.shape[3], nh = (int)expected.shape[2];
        var pixels = source.flatten().to(ScalarType.Byte).data<byte>().ToArray();
        var resized = PillowResize.Resize(pixels, w, h, 1, nw, nh, PillowFilter.Bicubic);
        Assert.Equal(expected.flatten().data<float>().ToArray().Select(v => (byte)v), resized);
    }

    [Fact]
    public void LanczosKeepsAConstantImageAndItsWeightsSumToOne()
    {
        var image = new RgbImage(20, 12, Enumerable.Repeat((byte)173, 20 * 12 * 3).ToArray());
        foreach (var (w, h) in new[] { (57, 31), (7, 5), (20, 30) })
        {
            var resized = PillowResize.Resize(image, w, h, PillowFilter.Lanczos);
            Assert.All(resized.Pixels, v => Assert.Equal(173, v));
        }
        var (bounds, weights, kernel) = PillowResize.Coefficients(20, 57, PillowFilter.Lanczos);
        for (int i = 0; i < 57; i++)
        {
            long sum = weights.Skip(i * kernel).Take(bounds[i * 2 + 1]).Sum(v => (long)v);
            Assert.InRange(sum, (1L << 22) - kernel, (1L << 22) + kernel);
        }
    }
}
