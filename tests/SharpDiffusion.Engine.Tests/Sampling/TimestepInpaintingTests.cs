using SharpDiffusion.Engine.Sampling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// Inpainting with A1111's timestep samplers (DDIM, DDIM CFG++, PLMS, UniPC): its <c>CFGDenoiserTimesteps</c> sets
/// <c>mask_before_denoising</c>, so every model call sees <c>x·nmask + init_latent·mask</c> (the clean init latent where
/// the image is kept) while the sampler's own update goes on from its un-blended x; the k-diffusion samplers blend the
/// prediction after the call instead. A recording eps model shows which x each call got.
/// </summary>
public class TimestepInpaintingTests
{
    /// <summary>The model's schedule, the point mass the eps model aims at and the init latent (seeded).</summary>
    private static (DiscreteSchedule Schedule, IReadOnlyList<float> AlphasCumprod, Tensor X0, Tensor Init) Setup()
    {
        var schedule = DiscreteSchedule.ScaledLinear();
        return (schedule, schedule.AlphasCumprod, randn(new long[] { 1, 4, 8, 8 }, generator: new Generator(5)) * 2,
            randn(new long[] { 1, 4, 8, 8 }, generator: new Generator(6)));
    }

    [Theory]
    [InlineData("DDIM")]
    [InlineData("DDIM CFG++")]
    [InlineData("PLMS")]
    [InlineData("UniPC")]
    public void EveryModelCallSeesTheMaskBlendedLatent(string sampler)
    {
        using var scope = NewDisposeScope();
        var (schedule, ac, x0, init) = Setup();
        var keep = zeros(4, 8, 8);
        keep[.., .., ..4] = ones(4, 8, 4); // the left half is kept
        var blend = new LatentMaskBlend(init, keep, 1 - keep);
        var model = new PointMassModel(x0, t => sampler == "UniPC" ? PointMassModel.InterpolatedAlpha(ac, t) : PointMassModel.DiscreteAlpha(ac, t));
        var steps = new List<Tensor>();
        SamplingRun.Run(new EpsDenoiser(model, schedule), new Conditioning(ones(1, 2, 3)), new Conditioning(zeros(1, 2, 3)),
            new SamplingRequest { Sampler = sampler, Steps = 6, CfgScale = 7, Seed = 8, LatentShape = [4, 8, 8], LatentMask = blend },
            s => steps.Add(s.X[0].clone().DetachFromDisposeScope()));

        Assert.True(model.Inputs.Count >= steps.Count);
        for (int i = 0; i < model.Inputs.Count; i++)
        {
            // The kept half is the clean init latent, exactly.
            Assert.True(0f == (model.Inputs[i][.., .., ..4] - init[0][.., .., ..4]).abs().max().item<float>(), $"call {i} of {model.Inputs.Count}: {(model.Inputs[i][.., .., ..4] - init[0][.., .., ..4]).abs().max().item<float>()}");
        }
        // The repainted half of the first call is the sampler's own start, x_T: the seed's unit noise.
        using var noise = SharpDiffusion.Engine.Random.BatchNoise.ForSeeds(SharpDiffusion.Engine.Random.NoiseSourceKind.Cpu, 8, 1);
        using var start = noise.Next([4, 8, 8]);
        Assert.Equal(0f, (model.Inputs[0][.., .., 4..] - start[0][.., .., 4..]).abs().max().item<float>());
        // ... and the sampler's x itself is not blended: its kept half is no copy of the init latent.
        Assert.True((steps[^1][.., .., ..4] - init[0][.., .., ..4]).abs().max().item<float>() > 0.1);
        foreach (var input in model.Inputs) input.Dispose();
    }

    [Fact]
    public void DdimUpdatesItsOwnLatentWithTheEpsOfTheBlendedOne()
    {
        using var scope = NewDisposeScope();
        var (schedule, ac, x0, init) = Setup();
        var keep = zeros(4, 8, 8);
        keep[.., ..4, ..] = ones(4, 4, 8); // the top half is kept
        var model = new PointMassModel(x0, t => PointMassModel.DiscreteAlpha(ac, t));
        var steps = new List<(double Sigma, Tensor X)>();
        SamplingRun.Run(new EpsDenoiser(model, schedule), new Conditioning(ones(1, 2, 3)), null,
            new SamplingRequest { Sampler = "DDIM", Steps = 5, Seed = 9, LatentShape = [4, 8, 8], LatentMask = new LatentMaskBlend(init, keep, 1 - keep) },
            s => steps.Add((s.Sigma, s.X.clone().DetachFromDisposeScope())));

        // A1111's ddim, written out for the first step: e = eps(blend(x)); pred_x0 = (x − √(1−a)·e)/√a; x' = √a'·pred_x0 + √(1−a')·e.
        var x = steps[0].X;
        var blended = x * (1 - keep) + init * keep;
        int t = schedule.TimestepOfSigma(steps[0].Sigma), tPrev = schedule.TimestepOfSigma(steps[1].Sigma);
        double a = ac[t], aPrev = ac[tPrev], alpha = Math.Sqrt(a);
        var e = (blended - x0 * alpha) / Math.Sqrt(1 - a);
        var expected = (x - e * Math.Sqrt(1 - a)) / alpha * Math.Sqrt(aPrev) + e * Math.Sqrt(1 - aPrev);
        TensorAssert.CloseRelativeToRms(expected, steps[1].X, 1e-5, "DDIM step 1");
        foreach (var input in model.Inputs) input.Dispose();
    }
}
