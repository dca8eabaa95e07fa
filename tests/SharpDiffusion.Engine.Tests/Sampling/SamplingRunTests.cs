using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary><see cref="SamplingRun"/> (the A1111-style entry point) on golden runs and on img2img.</summary>
public class SamplingRunTests
{
    [Theory]
    [InlineData(GoldenModel.Sd1, "euler_ancestral_karras", "Euler a", ScheduleType.Karras)]
    [InlineData(GoldenModel.Sd1, "lms", "LMS", null)]
    [InlineData(GoldenModel.Sd1, "dpm_2", "DPM2", null)]
    [InlineData(GoldenModel.Sd2v, "ddim", "DDIM", null)]
    [InlineData(GoldenModel.Sd2v, "dpmpp_2m_karras", "DPM++ 2M Karras", null)]
    [InlineData(GoldenModel.Sdxl, "heun", "Heun", ScheduleType.Uniform)]
    [InlineData(GoldenModel.Sdxl, "euler_ancestral", "euler_ancestral", null)]
    public void RequestByA1111NameReproducesGoldenLatents(GoldenModel which, string run, string samplerName, ScheduleType? schedule)
    {
        var settings = GoldenSamplingHarness.ReadSettings(which);
        using var model = new GoldenReplayModel(which, run);
        var sd = DiscreteSchedule.ScaledLinear();
        DiscreteDenoiser denoiser = which.PredictsV() ? new VDenoiser(model, sd) : new EpsDenoiser(model, sd);
        using var g = GoldenTensors.Open(which.GoldenFile() + ".safetensors");
        var (cond, uncond) = GoldenSamplingHarness.ReadConditioning(g, which);
        var request = new SamplingRequest
        {
            Sampler = samplerName,
            Schedule = schedule,
            Steps = settings.Steps,
            CfgScale = settings.CfgScale,
            Seed = settings.Seed,
            LatentShape = new long[] { 4, 8, 8 },
            A1111SigmaQuirks = false,
        };
        int steps = 0;
        using var latents = SamplingRun.Run(denoiser, cond, uncond, request, _ => steps++);
        Assert.Equal(settings.Steps, steps);
        Assert.Equal(model.ExpectedCalls, model.Calls);
        using var expected = g.Get($"sample.{run}.latents");
        TensorAssert.CloseRelativeToRms(expected, latents, GoldenSamplingHarness.RelativeTolerance, run);
    }

    private sealed class ShrinkingDenoiser : IDenoiser
    {
        public DiscreteSchedule Schedule { get; } = DiscreteSchedule.ScaledLinear();

        public Tensor Denoise(Tensor x, IReadOnlyList<double> sigma, Conditioning cond) => x * (1 / (1 + sigma[0] * sigma[0]));
    }

    [Fact]
    public void Img2ImgStartsFromTheNoisedInitLatentsAndRunsTheTail()
    {
        var denoiser = new ShrinkingDenoiser();
        using var context = zeros(1, 3, 5);
        using var init = full(new long[] { 1, 4, 4, 4 }, 0.5f);
        var request = new SamplingRequest
        {
            Sampler = "Euler",
            Steps = 20,
            Seed = 5,
            LatentShape = new long[] { 4, 4, 4 },
            InitLatents = init,
            DenoisingStrength = 0.5,
        };
        var steps = new List<(double Sigma, float[] X)>();
        using var result = SamplingRun.Run(denoiser, new Conditioning(context), null, request,
            s => steps.Add((s.Sigma, s.X.data<float>().ToArray())));
        var full20 = denoiser.Schedule.GetSigmas(20, ScheduleType.Uniform);
        // t_enc = int(0.5 · 20) = 10: 11 steps from sigmas[9].
        Assert.Equal(11, steps.Count);
        Assert.Equal(full20[9], steps[0].Sigma);
        using var noise = new TorchCpuNoise(5).Randn(new long[] { 4, 4, 4 });
        using var expectedStart = init + noise.unsqueeze(0) * full20[9];
        Assert.Equal(expectedStart.data<float>().ToArray(), steps[0].X);
        Assert.Equal(new long[] { 1, 4, 4, 4 }, result.shape);
    }

    [Fact]
    public void BatchImagesUseConsecutiveSeeds()
    {
        var denoiser = new ShrinkingDenoiser();
        using var context = zeros(1, 3, 5);
        float[] First(long seed, int batch, int row)
        {
            var request = new SamplingRequest { Sampler = "Euler a", Steps = 4, Seed = seed, BatchSize = batch, LatentShape = new long[] { 4, 4, 4 } };
            using var r = SamplingRun.Run(denoiser, new Conditioning(context), null, request);
            return r[row].data<float>().ToArray();
        }
        // Image 1 of a batch seeded 10 equals image 0 of a batch seeded 11, ancestral noise included.
        Assert.Equal(First(11, 1, 0), First(10, 2, 1));
        Assert.NotEqual(First(10, 2, 0), First(10, 2, 1));
    }
}
