using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Weights;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Models;

/// <summary>
/// The bf16 fast path: fp32 checkpoints load into bf16 modules, inputs/outputs stay float32, results stay near
/// the fp32 goldens, and no autograd history is recorded. Measured on the tiny goldens: U-Net 1.3-1.5% of the
/// output rms (rms of the difference), VAE decode under 1%. (Before the output convolutions were routed around
/// libtorch's bf16 kernel for narrow 3x3 convolutions, see <see cref="NarrowOutputConvolution"/>, both were ~30%.)
/// </summary>
public class ReducedPrecisionTests
{
    [Fact]
    public void BFloat16UNetStaysNearTheGolden()
    {
        using var golden = new GoldenFiles("tiny_sd1");
        var config = UNetConfig.FromLdmConfig(LdmConfigFile.Load(golden.ConfigPath));
        using var unet = new UNetModel(config, LayerFactory.Cpu(ScalarType.BFloat16));
        StrictLoader.Load(unet, golden.Checkpoint, "model.diffusion_model.");
        Assert.Equal(ScalarType.BFloat16, unet.DType);
        using var scope = NewDisposeScope();
        var expected = golden.Golden("unet.case0.out");
        var actual = unet.Forward(golden.Golden("unet.case0.x"), golden.Golden("unet.case0.t"), golden.Golden("unet.case0.context"));
        Assert.Equal(ScalarType.Float32, actual.dtype);
        Assert.False(actual.requires_grad);
        var rmsDiff = (actual - expected).square().mean().sqrt().item<float>();
        var rms = expected.square().mean().sqrt().item<float>();
        Assert.True(rmsDiff > 0 && rmsDiff <= 0.03 * rms, $"bf16 rms diff {rmsDiff:E3} (output rms {rms:F3})");
    }

    [Fact]
    public void BFloat16VaeStaysNearTheGolden()
    {
        using var golden = new GoldenFiles("tiny_sd1");
        using var vae = new AutoencoderKL(VaeConfig.FromLdmConfig(LdmConfigFile.Load(golden.ConfigPath)), LayerFactory.Cpu(ScalarType.BFloat16));
        StrictLoader.Load(vae, golden.Checkpoint, "first_stage_model.");
        using var scope = NewDisposeScope();
        var expected = golden.Golden("vae.decode.image");
        var actual = vae.Decode(golden.Golden("vae.decode.latents"));
        Assert.Equal(ScalarType.Float32, actual.dtype);
        var rmsDiff = (actual - expected).square().mean().sqrt().item<float>();
        var rms = expected.square().mean().sqrt().item<float>();
        Assert.True(rmsDiff > 0 && rmsDiff <= 0.02 * rms, $"bf16 rms diff {rmsDiff:E3} (output rms {rms:F3})");
    }

    [Fact]
    public void ParametersRecordNoGradients()
    {
        using var unet = new UNetModel(Sd15Configs.UNet, new LayerFactory(META, ScalarType.Float32));
        Assert.All(unet.parameters(), p => Assert.False(p.requires_grad));
    }
}
