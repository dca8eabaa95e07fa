using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Weights;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Models;

/// <summary>
/// The VAE reproduces the reference encode (posterior mean/logvar), decode (raw image) and 8-bit conversion of the
/// tiny checkpoints (fp32, max abs ≤ 1e-4; 8-bit: ≤ 1 level on ≤ 1 % of values), from config and from detection.
/// </summary>
public class GoldenVaeTests
{
    private const string Prefix = "first_stage_model.";

    public static TheoryData<string, bool> Models() => new()
    {
        { "tiny_sd1", false }, { "tiny_sd1", true },
        { "tiny_sd2v", false }, { "tiny_sd2v", true },
        { "tiny_sdxl", false }, { "tiny_sdxl", true },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void EncodeAndDecodeMatchGoldens(string model, bool detect)
    {
        using var golden = new GoldenFiles(model);
        var fromConfig = VaeConfig.FromLdmConfig(LdmConfigFile.Load(golden.ConfigPath));
        var config = fromConfig;
        if (detect)
        {
            config = VaeConfig.DetectFromWeights(golden.Checkpoint, Prefix, fromConfig.ScaleFactor);
            Assert.True(config.SameArchitecture(fromConfig), $"detected {config} vs config {fromConfig}");
        }
        Assert.Equal(model == "tiny_sdxl" ? 0.13025 : 0.18215, config.ScaleFactor);
        Assert.Equal(2, config.DownsampleFactor);

        using var vae = new AutoencoderKL(config);
        StrictLoader.Load(vae, golden.Checkpoint, Prefix);
        using var scope = NewDisposeScope();
        using var inference = inference_mode();

        var (mean, logvar) = vae.Encode(golden.Golden("vae.encode.image"));
        AssertClose(golden, "vae.encode.mean", mean);
        AssertClose(golden, "vae.encode.logvar", logvar);
        AssertClose(golden, "vae.encode.mean_scaled", vae.EncodeToLatents(golden.Golden("vae.encode.image")));

        var image = vae.Decode(golden.Golden("vae.decode.latents"));
        AssertClose(golden, "vae.decode.image", image);

        var u8 = ImageConversion.ToUInt8(image);
        Assert.Equal(ScalarType.Byte, u8.dtype);
        var expected = golden.Golden("vae.decode.image_u8");
        var levels = (u8.to(ScalarType.Float32) - expected).abs();
        Assert.True(levels.max().item<float>() <= 1f, "an 8-bit value is off by more than one level");
        var offFraction = levels.gt(0).to(ScalarType.Float32).mean().item<float>();
        Assert.True(offFraction <= 0.01f, $"{offFraction:P2} of 8-bit values differ");
    }

    [Fact]
    public void EightBitConversionTruncates()
    {
        using var x = tensor(new[] { -2f, -1f, 0f, 0.999f, 1f, 3f, -0.0039f });
        using var u8 = ImageConversion.ToUInt8(x);
        // (0 + 1)/2·255 = 127.5 -> 127 (not 128); 0.999 -> 254.87 -> 254; -0.0039 -> 127.00 -> 127.
        Assert.Equal(new byte[] { 0, 0, 127, 254, 255, 255, 127 }, u8.data<byte>().ToArray());
    }

    private static void AssertClose(GoldenFiles golden, string name, Tensor actual)
    {
        var diff = GoldenFiles.MaxAbsDiff(actual, golden.Golden(name));
        Assert.True(diff <= 1e-4, $"{golden.Name} {name}: max abs diff {diff:E3}");
    }
}
