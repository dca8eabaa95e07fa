using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Weights;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Models;

/// <summary>
/// The bf16 fast path: fp32 checkpoints load into bf16 modules, inputs/outputs stay float32, results stay near
/// the fp32 goldens, and no autograd history is recorded. bf16 activations keep ~3 significant digits; on the
/// random tiny UNets (every layer non-zero) the difference measured 0.26–0.29 of the output rms (rms of the
/// difference; with only the weights rounded to bf16 it is 0.02 max abs), the VAE stays within 0.1 of rms max abs.
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
        Assert.True(rmsDiff > 0 && rmsDiff <= 0.35 * rms, $"bf16 rms diff {rmsDiff:E3} (output rms {rms:F3})");
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
        var diff = GoldenFiles.MaxAbsDiff(actual, expected);
        var rms = expected.square().mean().sqrt().item<float>();
        Assert.True(diff > 0 && diff <= 0.1 * rms, $"bf16 max abs diff {diff:E3} (output rms {rms:F3})");
    }

    [Fact]
    public void ParametersRecordNoGradients()
    {
        using var unet = new UNetModel(Sd15Configs.UNet, new LayerFactory(META, ScalarType.Float32));
        Assert.All(unet.parameters(), p => Assert.False(p.requires_grad));
    }
}
