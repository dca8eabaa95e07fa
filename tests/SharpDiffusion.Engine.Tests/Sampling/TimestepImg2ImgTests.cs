using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// img2img of A1111's other timestep samplers (DDIM, DDIM CFG++, PLMS) as <c>CompVisSampler.sample_img2img</c> wires
/// them: <c>t_enc = int(min(s, 0.999)·steps)</c>, x noised to T[t_enc], the loop over <c>T[:t_enc]</c> — t_enc − 1
/// steps whose first model call is at T[t_enc − 1], ending at T[0]. The samplers golden has txt2img runs only, so the
/// test uses an exact property: with a point-mass eps model (the same one the UniPC test uses) every DDIM-type update
/// keeps x_t = sqrt(a_t)·x0 + sqrt(1 − a_t)·ε for the ε the first call implies, so the final latents, the call times
/// and the call count pin the wiring down.
/// </summary>
public class TimestepImg2ImgTests
{
    [Theory]
    [InlineData("DDIM", 8, 0.75, 0)]       // t_enc 6: noise at T[6] = 751, calls at 626, 501, …, 126 (5 steps)
    [InlineData("DDIM CFG++", 12, 0.5, 0)] // 1000 // 12 = 83: t_enc 6, noise at T[6] = 499, calls from T[5] = 416
    [InlineData("PLMS", 20, 1.0, 1)]       // strength 1 counts as 0.999: t_enc 19, noise at T[19] = 951; PLMS's first step calls twice
    public void PointMassRunEndsWhereTheExactSolutionDoes(string sampler, int steps, double strength, int extraCalls)
    {
        using var scope = NewDisposeScope();
        var schedule = DiscreteSchedule.ScaledLinear();
        var ac = schedule.AlphasCumprod;
        var shape = new long[] { 4, 8, 8 };
        var x0 = randn(new long[] { 1, 4, 8, 8 }, generator: new Generator(3)) * 3;
        var model = new PointMassModel(x0, t => PointMassModel.DiscreteAlpha(ac, t));
        var request = new SamplingRequest
        {
            Sampler = sampler, Steps = steps, CfgScale = 7, Seed = 42, LatentShape = shape, InitLatents = x0, DenoisingStrength = strength,
        };
        var latents = SamplingRun.Run(new EpsDenoiser(model, schedule), new Conditioning(ones(1, 2, 3)), new Conditioning(zeros(1, 2, 3)), request);

        // A1111's numbers, written out: T = clip(range(0, 1000, 1000 // steps) + 1, 0, 999), t_enc = int(min(s, 0.999)·steps).
        var T = Enumerable.Range(0, 1000).Where(i => i % (1000 / steps) == 0).Select(i => Math.Min(i + 1, 999)).ToArray();
        int tEnc = (int)(Math.Min(strength, 0.999) * steps);
        using var noise = BatchNoise.ForSeeds(NoiseSourceKind.Cpu, 42, 1);
        var xi = x0 * Math.Sqrt(ac[T[tEnc]]) + noise.Next(shape) * Math.Sqrt(1 - ac[T[tEnc]]);

        // Guidance batches cond and uncond into one call: t_enc − 1 steps, from T[t_enc − 1] down to T[1].
        Assert.Equal(tEnc - 1 + extraCalls, model.Timesteps.Count);
        TensorAssert.CloseRelativeToRms(xi[0], model.Inputs[0], 1e-6, "first model input");
        var walked = model.Timesteps.Where((_, i) => extraCalls == 0 || i != 1).ToArray(); // PLMS's second call looks ahead to T[t_enc − 2]
        var expectedTimes = Enumerable.Range(1, tEnc - 1).Reverse().Select(k => T[k]).ToArray();
        Assert.Equal(expectedTimes.Length, walked.Length);
        for (int i = 0; i < walked.Length; i++)
            Assert.True(Math.Abs(walked[i] - expectedTimes[i]) <= 1e-3, $"step {i}: U-Net t {walked[i]}, A1111 {expectedTimes[i]}");

        // The ε the first call implies (x_i read as if at T[t_enc − 1]), carried to T[0].
        double aStart = ac[T[tEnc - 1]], aEnd = ac[T[0]];
        var epsilon = (xi - x0 * Math.Sqrt(aStart)) / Math.Sqrt(1 - aStart);
        var expected = x0 * Math.Sqrt(aEnd) + epsilon * Math.Sqrt(1 - aEnd);
        TensorAssert.CloseRelativeToRms(expected, latents, 1e-5, $"{sampler} img2img latents");
        // The property has teeth: walking from the noise level T[t_enc] itself ends elsewhere by far more.
        double aNoise = ac[T[tEnc]];
        var fromNoiseLevel = x0 * Math.Sqrt(aEnd) + (xi - x0 * Math.Sqrt(aNoise)) / Math.Sqrt(1 - aNoise) * Math.Sqrt(1 - aEnd);
        Assert.True((fromNoiseLevel - expected).abs().max().item<float>() > 100 * (latents - expected).abs().max().item<float>());
        foreach (var input in model.Inputs) input.Dispose();
    }

    [Theory]
    [InlineData("PLMS")]
    [InlineData("DDIM CFG++")]
    [InlineData("DDIM")]
    public void OneDenoisingStepOrFewerIsOneClearError(string sampler)
    {
        using var scope = NewDisposeScope();
        var schedule = DiscreteSchedule.ScaledLinear();
        var x0 = zeros(1, 4, 8, 8);
        var request = new SamplingRequest { Sampler = sampler, Steps = 8, Seed = 1, LatentShape = new long[] { 4, 8, 8 }, InitLatents = x0, DenoisingStrength = 0.2 };
        var e = Assert.Throws<ArgumentException>(() =>
            SamplingRun.Run(new EpsDenoiser(new PointMassModel(x0, t => PointMassModel.DiscreteAlpha(schedule.AlphasCumprod, t)), schedule), new Conditioning(ones(1, 2, 3)), null, request));
        Assert.Equal($"{sampler} img2img needs at least 2 denoising steps: int(strength 0.2 x 8 steps) = 1", e.Message);
    }
}
