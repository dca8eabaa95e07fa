using SharpDiffusion.Engine.ControlNet;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ControlNet;

/// <summary>
/// The SD1 ControlNet against tests/data/golden/ext/controlnet_golden (lllyasviel/ControlNet's cldm run on tiny_sd1):
/// README §2.2 and §5: residuals max abs ≤ 1e-4·max(1, rms), U-Net outputs ≤ 1e-4.
/// </summary>
public class ControlNetGoldenTests
{
    private const string GoldenFile = "ext/controlnet_golden.safetensors";
    private static readonly string Original = TestPaths.GoldenFile("ext/tiny_controlnet_sd1.pth");
    private static readonly string Diffusers = TestPaths.GoldenFile("ext/tiny_controlnet_sd1_diffusers");

    private static UNetConfig Sd1Config() => UNetConfig.FromLdmConfig(LdmConfigFile.Load(TestPaths.GoldenFile("tiny_sd1.config.json")));

    public static TheoryData<string, ControlNetLayout> Files() => new()
    {
        { Original, ControlNetLayout.Original },
        { Diffusers, ControlNetLayout.Diffusers },
        { Diffusers + "/diffusion_pytorch_model.safetensors", ControlNetLayout.Diffusers },
    };

    [Theory]
    [MemberData(nameof(Files))]
    public void BothLayoutsReproduceTheHintAndEveryResidual(string path, ControlNetLayout layout)
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var controlNet = ControlNetLoader.Load(path, Sd1Config());
        Assert.Equal(layout, controlNet.Layout);
        Assert.Equal(new[] { 3, 16, 16, 32, 32 }, controlNet.Model.HintChannels);
        Assert.Equal(2, controlNet.Model.HintDownsampling);
        using var scope = NewDisposeScope();
        var hint = golden.Get("input.hint");
        TensorAssert.MaxAbs(golden.Get("control.guided_hint"), controlNet.Model.GuidedHint(hint), ResidualTolerance(golden.Get("control.guided_hint")), "guided hint");
        using var residuals = controlNet.Model.Forward(golden.Get("input.x"), golden.Get("input.t"), golden.Get("input.context"), hint);
        Assert.Equal(5, residuals.Count);
        for (int i = 0; i < residuals.Count; i++)
        {
            var expected = golden.Get($"control.residual.{i}");
            TensorAssert.MaxAbs(expected, residuals[i], ResidualTolerance(expected), $"residual {i}");
        }
    }

    [Fact]
    public void UNetWithResidualsReproducesControlLdmAtStrengthOneAndHalf()
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var controlNet = ControlNetLoader.Load(Original, Sd1Config());
        using var checkpoint = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd1.safetensors"));
        using var unet = new UNetModel(Sd1Config());
        StrictLoader.Load(unet, checkpoint, "model.diffusion_model.");
        using var scope = NewDisposeScope();
        var (x, t, context) = (golden.Get("input.x"), golden.Get("input.t"), golden.Get("input.context"));
        using var residuals = controlNet.Model.Forward(x, t, context, golden.Get("input.hint"));

        TensorAssert.MaxAbs(golden.Get("unet.out.no_control"), unet.Forward(x, t, context, null, null), 1e-4, "no control");
        foreach (var strength in new[] { 1.0, 0.5 })
        {
            using var scaled = residuals.Scale(strength);
            var actual = unet.Forward(x, t, context, null, scaled.Residuals);
            TensorAssert.MaxAbs(golden.Get($"unet.out.strength_{strength:0.0}"), actual, 1e-4, $"strength {strength}");
        }
        // The residuals are added to copies: the ControlNet's outputs are unchanged by the U-Net call.
        TensorAssert.MaxAbs(golden.Get("control.residual.4"), residuals[4], ResidualTolerance(golden.Get("control.residual.4")), "residual after use");
    }

    [Fact]
    public void ControlNetForAnotherBaseModelIsRefusedInOneLine()
    {
        var sdxl = UNetConfig.FromLdmConfig(LdmConfigFile.Load(TestPaths.GoldenFile("tiny_sdxl.config.json")));
        var e = Assert.Throws<InvalidModelFileException>(() => ControlNetLoader.Load(Original, sdxl));
        Assert.StartsWith(Original + ": SDXL ControlNets", e.Message);
        var sd2 = UNetConfig.FromLdmConfig(LdmConfigFile.Load(TestPaths.GoldenFile("tiny_sd2v.config.json")));
        if (sd2.ContextDim != Sd1Config().ContextDim || sd2.ModelChannels != Sd1Config().ModelChannels)
        {
            e = Assert.Throws<InvalidModelFileException>(() => ControlNetLoader.Load(Original, sd2));
            Assert.StartsWith(Original + ": ControlNet for another base model", e.Message);
        }
        else
        {
            // Same widths: the strict load catches the difference (SD2's linear projections).
            e = Assert.Throws<InvalidModelFileException>(() => ControlNetLoader.Load(Original, sd2));
            Assert.Contains("weights do not fit", e.Message);
        }
        Assert.DoesNotContain('\n', e.Message);

        var notControlNet = TestPaths.GoldenFile("ext/tiny_rrdb_x4.pth");
        e = Assert.Throws<InvalidModelFileException>(() => ControlNetLoader.Load(notControlNet, Sd1Config()));
        Assert.StartsWith(notControlNet + ": not a ControlNet", e.Message);
    }

    /// <summary>README §5: max abs ≤ 1e-4 · max(1, rms).</summary>
    private static double ResidualTolerance(Tensor expected) => 1e-4 * Math.Max(1.0, TensorAssert.Rms(expected));
}
