using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Sampling;

namespace SharpDiffusion.Engine.Tests.Pipeline;

/// <summary>
/// A1111's hires. fix pass calls <c>sample_img2img(..., steps=hr_second_pass_steps or steps)</c>, and
/// <c>setup_img2img_steps</c> with explicit steps runs exactly that many over a schedule of
/// <c>int(steps / min(denoise, 0.999))</c> (t_enc = steps − 1), not the tail of a <c>steps</c>-long schedule as plain
/// img2img does. The numbers are written out here from that rule.
/// </summary>
public class HiresStepsTests
{
    [Theory]
    [InlineData("Euler", 4, 0.5)]      // schedule of 8, the last 4 steps
    [InlineData("DPM++ 2M", 5, 0.7)]   // int(5 / 0.7) = 7, the last 5
    [InlineData("Euler a", 3, 1.0)]    // strength 1 counts as 0.999: int(3 / 0.999) = 3, all of it
    public void TheHiresPassRunsTheStepsAskedForOverA1111sLongerSchedule(string sampler, int hiresSteps, double denoise)
    {
        using var model = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"),
            new CheckpointLoadOptions { ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"), TokenizerPath = TestPaths.GoldenFile("clip") });
        var request = new GenerationRequest
        {
            Prompt = "a lighthouse", Steps = 6, Sampler = sampler, Seed = 3, Width = 16, Height = 16,
            HiresScale = 2, HiresSteps = hiresSteps, HiresDenoise = denoise,
        };
        var sigmas = new List<double>();
        using var result = ImageGenerator.Generate(model, request, s => sigmas.Add(s.Sigma));
        var hires = sigmas.Skip(6).ToList(); // the first pass reports its 6 steps first

        Assert.Equal(hiresSteps, hires.Count);
        int scheduleSteps = (int)(hiresSteps / Math.Min(denoise, 0.999));
        var (resolved, implied) = SamplerRegistry.Resolve(request.Sampler, request.A1111SigmaQuirks);
        var full = resolved.Sigmas(model.CreateDenoiser().Schedule, scheduleSteps, implied);
        Assert.Equal(full.Skip(scheduleSteps - hiresSteps).Take(hiresSteps).ToArray(), hires.ToArray());
    }
}
