using SharpDiffusion.Engine.ControlNet;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ControlNet;

/// <summary>The guidance window rules and one CFG step with control, against controlnet_golden's sampling runs (§2.3).</summary>
public class ControlGuidanceTests
{
    [Theory]
    [InlineData("full", 0.0, 1.0, ControlGuidanceRule.WebUiExtension)]
    [InlineData("a1111_guidance", 0.0, 0.5, ControlGuidanceRule.WebUiExtension)]
    [InlineData("diffusers_guidance", 0.0, 0.5, ControlGuidanceRule.Diffusers)]
    public void ActiveStepsMatchTheGolden(string run, double start, double end, ControlGuidanceRule rule)
    {
        using var golden = GoldenTensors.Open("ext/controlnet_golden.safetensors");
        var expected = golden.Floats($"sample.{run}.control_active").Select(v => v == 1f).ToArray();
        var actual = Enumerable.Range(0, expected.Length).Select(i => ControlGuidance.IsActive(i, expected.Length, start, end, rule)).ToArray();
        Assert.Equal(expected, actual);
    }

    /// <summary>
    /// The first Euler step of run "full": ControlNet and U-Net both get x·c_in and the fractional timestep of σ, the
    /// ControlNet runs on the [cond, uncond] batch with the same hint; then eps → denoised and CFG 7.
    /// </summary>
    [Fact]
    public void FirstStepDenoisedWithControlMatchesTheGolden()
    {
        using var golden = GoldenTensors.Open("ext/controlnet_golden.safetensors");
        var config = UNetConfig.FromLdmConfig(LdmConfigFile.Load(TestPaths.GoldenFile("tiny_sd1.config.json")));
        using var checkpoint = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd1.safetensors"));
        using var unet = new UNetModel(config);
        StrictLoader.Load(unet, checkpoint, "model.diffusion_model.");
        var schedule = DiscreteSchedule.FromCheckpoint(checkpoint);
        using var controlNet = ControlNetLoader.Load(TestPaths.GoldenFile("ext/tiny_controlnet_sd1.pth"), config);
        using var scope = NewDisposeScope();

        double sigma = golden.Floats("sample.sigmas")[0];
        var x = golden.Get("sample.full.steps_x")[0];
        var batch = cat(new[] { x, x }, 0);
        var xIn = batch.mul(1.0 / Math.Sqrt(sigma * sigma + 1));
        var t = full(2, schedule.SigmaToT(sigma), ScalarType.Float32);
        var context = golden.Get("input.context");
        var hint = golden.Get("input.hint")[0..1].repeat(2, 1, 1, 1);
        using var residuals = controlNet.Model.Forward(xIn, t, context, hint);
        var eps = unet.Forward(xIn, t, context, null, residuals.Residuals);
        var denoised = batch.sub(eps.mul(sigma));
        var cfg = denoised[1].add(denoised[0].sub(denoised[1]).mul(7.0)).unsqueeze(0);
        var expected = golden.Get("sample.full.steps_denoised")[0];
        TensorAssert.CloseRelativeToRms(expected, cfg, 1e-3, "step 0 denoised with control");
    }
}
