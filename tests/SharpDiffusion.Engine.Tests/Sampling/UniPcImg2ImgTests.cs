using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Png;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// UniPC img2img as A1111 1.10 wires it (<c>CompVisSampler.sample_img2img</c> + <c>unipc(..., is_img2img=True)</c>).
/// The samplers golden has no img2img run (README §4: txt2img only), so the test uses a property that holds exactly:
/// for a "model" whose data prediction is a fixed x0 (the eps of a point mass), every UniPC update keeps
/// <c>x_t = α_t·x0 + σ_t·ε</c> for the ε implied at the start time, whatever the step sizes and orders. With A1111's
/// wiring the start x is noised to T[t_enc] but UniPC starts at t = T[t_enc − 1]/1000 + 1/1000, which fixes ε and the
/// final latents; a wrong noise level, start time, end time or step count changes them.
/// </summary>
public class UniPcImg2ImgTests
{
    [Theory]
    [InlineData(8, 0.75)]  // t_enc 6: noise at T[6] = 751, UniPC from t = 0.627 (U-Net 626)
    [InlineData(12, 0.5)]  // len(T) = 13 for 12 steps (1000 // 12 = 83): t_enc 6, noise at T[6] = 499, start at T[5] = 416
    [InlineData(20, 1.0)]  // strength 1 counts as 0.999: t_enc 19, noise at T[19] = 951
    public void PointMassRunEndsWhereTheExactSolutionDoes(int steps, double strength)
    {
        using var scope = NewDisposeScope();
        var schedule = DiscreteSchedule.ScaledLinear();
        var ac = schedule.AlphasCumprod;
        var shape = new long[] { 4, 8, 8 };
        var x0 = randn(new long[] { 1, 4, 8, 8 }, generator: new Generator(3)) * 3;
        var model = new PointMassModel(x0, t => PointMassModel.InterpolatedAlpha(ac, t));
        var request = new SamplingRequest
        {
            Sampler = "UniPC", Steps = steps, CfgScale = 7, Seed = 42, LatentShape = shape, InitLatents = x0, DenoisingStrength = strength,
        };
        var cond = new Conditioning(ones(1, 2, 3));
        var uncond = new Conditioning(zeros(1, 2, 3));
        var latents = SamplingRun.Run(new EpsDenoiser(model, schedule), cond, uncond, request);

        // A1111's numbers, written out: T = clip(range(0, 1000, 1000 // steps) + 1, 0, 999), t_enc = int(min(s, 0.999)·steps).
        var T = Enumerable.Range(0, 1000).Where(i => i % (1000 / steps) == 0).Select(i => Math.Min(i + 1, 999)).ToArray();
        int tEnc = (int)(Math.Min(strength, 0.999) * steps);
        using var noise = BatchNoise.ForSeeds(NoiseSourceKind.Cpu, 42, 1);
        var n = noise.Next(shape);
        var xi = x0 * Math.Sqrt(ac[T[tEnc]]) + n * Math.Sqrt(1 - ac[T[tEnc]]);

        // t_enc model calls (UniPC: one per step), the first on x_i at U-Net time T[t_enc - 1], the times
        // (linspace(t_start, 0.001, t_enc + 1) − 0.001)·1000.
        Assert.Equal(tEnc, model.Timesteps.Count);
        TensorAssert.CloseRelativeToRms(xi[0], model.Inputs[0], 1e-6, "first model input");
        float tStart = T[tEnc - 1] / 1000f + 0.001f;
        var times = linspace(tStart, 0.001, tEnc + 1, ScalarType.Float32).data<float>().ToArray();
        for (int i = 0; i < tEnc; i++)
            Assert.True(Math.Abs((times[i] - 0.001f) * 1000f - model.Timesteps[i]) <= 1e-3, $"call {i}: U-Net t {model.Timesteps[i]}, expected {(times[i] - 0.001f) * 1000f}");
        Assert.True(Math.Abs(T[tEnc - 1] - model.Timesteps[0]) <= 1e-3, $"first call at U-Net t {model.Timesteps[0]}, A1111 {T[tEnc - 1]}");

        // The exact solution: ε from x_i read at the start time, then x at t = 0.001 (U-Net time 0).
        double alphaStart = PointMassModel.InterpolatedAlpha(ac, T[tEnc - 1]);
        var epsilon = (xi - x0 * alphaStart) / Math.Sqrt(1 - alphaStart * alphaStart);
        double alphaEnd = Math.Sqrt(ac[0]);
        var expected = x0 * alphaEnd + epsilon * Math.Sqrt(1 - alphaEnd * alphaEnd);
        TensorAssert.CloseRelativeToRms(expected, latents, 1e-5, "UniPC img2img latents");
        // The property has teeth: starting the solver at the noise level T[t_enc] instead moves the result by far more.
        double alphaNoise = Math.Sqrt(ac[T[tEnc]]);
        var atNoiseLevel = x0 * alphaEnd + (xi - x0 * alphaNoise) / Math.Sqrt(1 - alphaNoise * alphaNoise) * Math.Sqrt(1 - alphaEnd * alphaEnd);
        Assert.True((atNoiseLevel - expected).abs().max().item<float>() > 100 * (latents - expected).abs().max().item<float>());
        foreach (var input in model.Inputs) input.Dispose();
    }

    [Fact]
    public void FewerDenoisingStepsThanTheOrderIsOneClearError()
    {
        using var scope = NewDisposeScope();
        var schedule = DiscreteSchedule.ScaledLinear();
        var x0 = zeros(1, 4, 8, 8);
        var request = new SamplingRequest { Sampler = "UniPC", Steps = 8, Seed = 1, LatentShape = new long[] { 4, 8, 8 }, InitLatents = x0, DenoisingStrength = 0.3 };
        var e = Assert.Throws<ArgumentException>(() =>
            SamplingRun.Run(new EpsDenoiser(new PointMassModel(x0, t => PointMassModel.InterpolatedAlpha(schedule.AlphasCumprod, t)), schedule), new Conditioning(ones(1, 2, 3)), null, request));
        Assert.Equal("UniPC img2img needs at least 3 denoising steps: int(strength 0.3 x 8 steps) = 2", e.Message);
    }

    [Fact]
    public void GenerateRunsUniPcImg2ImgThroughTheCli()
    {
        using var dir = new TempDir();
        var init = dir.File("init.png");
        var rgb = new byte[16 * 16 * 3];
        for (int i = 0; i < rgb.Length; i++) rgb[i] = (byte)(i * 7);
        PngEncoder.Save(init, rgb, 16, 16);
        var output = dir.File("out.png");
        var (code, _, stderr) = CliHarness.Run("generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--width", "16", "--height", "16", "--prompt", "a cat", "--steps", "8", "--seed", "5",
            "--sampler", "UniPC", "--init-image", init, "--strength", "0.75", "--out", output);
        Assert.True(code == 0, stderr);
        var info = A1111Infotext.Parse(PngTextChunks.Get(PngTextChunks.Read(output), "parameters")!);
        Assert.Equal("UniPC", info.Sampler);
        Assert.Equal("0.75", info["Denoising strength"]);

        (code, _, stderr) = CliHarness.Run("generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--width", "16", "--height", "16", "--prompt", "a cat", "--steps", "8", "--seed", "5",
            "--sampler", "UniPC", "--init-image", init, "--strength", "0.3", "--out", dir.File("weak.png"));
        Assert.Equal(2, code);
        Assert.Contains("UniPC img2img needs at least 3 denoising steps", stderr);
        Assert.False(File.Exists(dir.File("weak.png")));
    }
}
