using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Sampling.Samplers;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>Schedules, sigma lists and sigma→t against the golden <c>schedule.*</c> tensors (README §3, §9.4).</summary>
public class ScheduleTests
{
    private static readonly DiscreteSchedule Sd = DiscreteSchedule.ScaledLinear();

    [Fact]
    public void ScaledLinearMatchesGoldenBetasAlphasAndSigmas()
    {
        using var g = GoldenTensors.Open("tiny_sd1_golden.safetensors");
        TensorAssert.Relative(g.Doubles("schedule.betas"), DiscreteSchedule.ScaledLinearBetas(), 1e-6, "betas");
        TensorAssert.Relative(g.Doubles("schedule.alphas_cumprod"), Sd.AlphasCumprod.Select(v => (double)v).ToArray(), 1e-6, "alphas_cumprod");
        TensorAssert.Relative(g.Doubles("schedule.sigmas"), Sd.Sigmas.Select(v => (double)v).ToArray(), 1e-6, "sigmas");
        Assert.Equal(0.0291675, Sd.SigmaMin, 6);
        Assert.Equal(14.614642, Sd.SigmaMax, 5);
    }

    [Fact]
    public void CheckpointBuffersGiveTheSameScheduleAndSdxlFallsBackToScaledLinear()
    {
        using (var sd1 = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd1.safetensors")))
        {
            Assert.Contains(sd1.Tensors, t => t.Name == "alphas_cumprod");
            var fromFile = DiscreteSchedule.FromCheckpoint(sd1);
            Assert.Equal(Sd.AlphasCumprod, fromFile.AlphasCumprod);
        }
        using var xl = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sdxl.safetensors"));
        Assert.DoesNotContain(xl.Tensors, t => t.Name == "alphas_cumprod");
        Assert.Equal(Sd.AlphasCumprod, DiscreteSchedule.FromCheckpoint(xl).AlphasCumprod);
    }

    [Theory]
    [InlineData("tiny_sd1_golden.safetensors", 8)]
    [InlineData("tiny_sd1_golden.safetensors", 10)]
    [InlineData("tiny_sd1_golden.safetensors", 20)]
    [InlineData("tiny_sdxl_golden.safetensors", 8)]
    public void NormalAndKarrasSigmasMatchGolden(string file, int steps)
    {
        using var g = GoldenTensors.Open(file);
        TensorAssert.Relative(g.Doubles($"schedule.normal_{steps}"), Sd.GetSigmas(steps, ScheduleType.Uniform), 1e-5, $"normal_{steps}");
        TensorAssert.Relative(g.Doubles($"schedule.karras_{steps}"), Sd.GetSigmas(steps, ScheduleType.Karras), 1e-5, $"karras_{steps}");
    }

    [Fact]
    public void SigmaToTMatchesGoldenTimesteps()
    {
        using var g = GoldenTensors.Open("tiny_sd1_golden.safetensors");
        foreach (var name in new[] { "normal_10", "karras_10" })
        {
            var sigmas = g.Doubles($"schedule.{name}");
            var expected = g.Doubles($"schedule.{name}_t");
            var actual = sigmas.Take(10).Select(Sd.SigmaToT).ToArray();
            TensorAssert.Absolute(expected, actual, 1e-3, name + "_t");
        }
    }

    [Fact]
    public void SigmaToTIsExactAtScheduleSigmasAndClampsOutsideTheRange()
    {
        foreach (int t in new[] { 0, 1, 126, 500, 998, 999 }) Assert.Equal(t, Sd.SigmaToT(Sd.Sigmas[t]));
        Assert.Equal(0.0, Sd.SigmaToT(0.001));
        Assert.Equal(999.0, Sd.SigmaToT(100.0));
        foreach (double s in new[] { 0.05, 0.7, 3.3, 12.0 })
            Assert.Equal(s, Sd.TToSigma(Sd.SigmaToT(s)), s * 1e-5);
    }

    [Fact]
    public void ExponentialSigmasAreEvenlySpacedInLogSigma()
    {
        var sigmas = Sd.GetSigmas(10, ScheduleType.Exponential);
        Assert.Equal(11, sigmas.Length);
        Assert.Equal(0.0, sigmas[^1]);
        Assert.Equal(Sd.SigmaMax, sigmas[0], 1e-5 * Sd.SigmaMax);
        Assert.Equal(Sd.SigmaMin, sigmas[9], 1e-5 * Sd.SigmaMin);
        double step = (Math.Log(Sd.SigmaMin) - Math.Log(Sd.SigmaMax)) / 9;
        for (int i = 0; i < 10; i++) Assert.Equal(Math.Log(Sd.SigmaMax) + i * step, Math.Log(sigmas[i]), 1e-5);
    }

    [Theory]
    [InlineData("tiny_sd1_golden.safetensors")]
    [InlineData("tiny_sd2v_golden.safetensors")]
    public void DdimTimestepsAndAlphasMatchGolden(string file)
    {
        using var g = GoldenTensors.Open(file);
        Assert.Equal(new[] { 1, 126, 251, 376, 501, 626, 751, 876 }, Sd.DdimTimesteps(8));
        Assert.Equal(new double[] { 876, 751, 626, 501, 376, 251, 126, 1 }, g.Doubles("sample.ddim.timesteps"));
        var sigmas = Sd.DdimSigmas(8);
        var alphas = sigmas.Take(8).Select(DdimSampler.AlphaOf).ToArray();
        var alphasPrev = sigmas.Skip(1).Select(DdimSampler.AlphaOf).ToArray();
        TensorAssert.Relative(g.Doubles("sample.ddim.alphas"), alphas, 1e-5, "alphas");
        TensorAssert.Relative(g.Doubles("sample.ddim.alphas_prev"), alphasPrev, 1e-5, "alphas_prev");
    }

    [Fact]
    public void SgmSigmasAndLegacyDiscretisationMatchGolden()
    {
        using var g = GoldenTensors.Open("tiny_sdxl_golden.safetensors");
        Assert.Equal(g.Floats("schedule.sgm.sigmas"), Sd.SgmSigmas);
        var timesteps = g.Doubles("schedule.sgm.legacy_8_timesteps");
        Assert.Equal(new double[] { 999, 874, 749, 624, 499, 374, 249, 124 }, timesteps);
        Assert.Equal(g.Doubles("schedule.sgm.legacy_8"), Sd.SgmLegacySigmas(8));
    }

    [Fact]
    public void Img2ImgTailFollowsA1111StepSelection()
    {
        var full = Sd.GetSigmas(20, ScheduleType.Uniform);
        var tail = Img2ImgSchedule.Tail(full, 0.75);
        // t_enc = int(0.75 * 20) = 15: sigmas[4:], 16 steps.
        Assert.Equal(full.Skip(4).ToArray(), tail);
        // strength 1 is capped at 0.999: t_enc = 19, the whole list.
        Assert.Equal(full, Img2ImgSchedule.Tail(full, 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Img2ImgSchedule.Tail(full, 0));
    }
}
