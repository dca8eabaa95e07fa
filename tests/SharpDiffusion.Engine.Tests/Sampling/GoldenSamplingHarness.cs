using System.Text.Json;
using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Sampling.Samplers;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// Runs one golden sampling run (README §3 "Sampling", §8, §9.5) end to end — seeded CPU noise (draw #0 = initial
/// noise, then the ancestral draws), eps/v denoiser, batched CFG [uncond, cond], the sampler under its A1111 name
/// and schedule — on any <see cref="IDiffusionModel"/>, and checks every step's x and denoised value and the final
/// latents within the README tolerance (max abs ≤ 1e-3 × rms).
/// Used by <see cref="GoldenRunTestsBase"/>, whose subclasses supply the model (replay now, the real U-Net of
/// <see cref="GoldenModels.Checkpoint"/> once it exists).
/// </summary>
internal static class GoldenSamplingHarness
{
    public const double RelativeTolerance = 1e-3;

    public sealed record Settings(long Seed, double CfgScale, int Steps);

    public static Settings ReadSettings(GoldenModel which)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.GoldenFile(which.GoldenFile() + ".json")));
        var s = doc.RootElement.GetProperty("sampling");
        return new Settings(s.GetProperty("seed").GetInt64(), s.GetProperty("cfg_scale").GetDouble(), s.GetProperty("steps").GetInt32());
    }

    /// <summary>Sampler, schedule and denoiser timestep mode of a golden run name.</summary>
    public static (Sampler Sampler, ScheduleType Schedule, TimestepMode Mode) Describe(string run)
    {
        if (run == "sgm_euler") return (new EulerSampler(), ScheduleType.Uniform, TimestepMode.SgmQuantized);
        // The goldens are plain k-diffusion / CompVis DDIM: A1111's sigma-list quirks off.
        var (sampler, schedule) = SamplerRegistry.Resolve(run, a1111SigmaQuirks: false);
        return (sampler, schedule ?? ScheduleType.Uniform, TimestepMode.Fractional);
    }

    /// <summary>The sigma list of a run, computed by the engine (not read from the golden).</summary>
    public static double[] Sigmas(GoldenModel which, string run, DiscreteSchedule schedule)
    {
        var (sampler, type, _) = Describe(run);
        if (run == "sgm_euler") return schedule.SgmLegacySigmas(ReadSettings(which).Steps);
        return sampler.Sigmas(schedule, ReadSettings(which).Steps, type);
    }

    public static void RunAndAssert(IDiffusionModel model, GoldenModel which, string run)
    {
        var settings = ReadSettings(which);
        var schedule = DiscreteSchedule.ScaledLinear();
        var (sampler, _, mode) = Describe(run);
        using var g = GoldenTensors.Open(which.GoldenFile() + ".safetensors");
        string prefix = $"sample.{run}.";
        using var scope = NewDisposeScope();

        var sigmas = Sigmas(which, run, schedule);
        if (g.Has(prefix + "sigmas")) TensorAssert.Relative(g.Doubles(prefix + "sigmas"), sigmas, 1e-5, run + " sigmas");

        var (cond, uncond) = ReadConditioning(g, which);
        DiscreteDenoiser denoiser = which.PredictsV() ? new VDenoiser(model, schedule, mode) : new EpsDenoiser(model, schedule, mode);
        using var cfg = new CfgDenoiser(denoiser, cond, uncond, settings.CfgScale);

        using var noise = BatchNoise.ForSeeds(NoiseSourceKind.Cpu, settings.Seed, 1);
        var imageShape = new long[] { 4, 8, 8 };
        var initialNoise = noise.Next(imageShape);
        Assert.Equal(g.Floats("sample.noise"), initialNoise.data<float>().ToArray());

        var drawn = new List<Tensor>();
        var xs = new List<Tensor>();
        var ds = new List<Tensor>();
        var context = new SamplerContext
        {
            AncestralNoise = () =>
            {
                var n = noise.Next(imageShape);
                drawn.Add(n.clone().DetachFromDisposeScope());
                return n;
            },
            Callback = step =>
            {
                Assert.Equal(xs.Count, step.Index);
                Assert.Equal(sigmas.Length - 1, step.Total);
                xs.Add(step.X.clone().DetachFromDisposeScope());
                ds.Add(step.Denoised.clone().DetachFromDisposeScope());
            },
        };
        var start = run == "sgm_euler"
            ? initialNoise * Math.Sqrt(1 + sigmas[0] * sigmas[0])
            : sampler.InitialLatent(initialNoise, sigmas[0]);
        var latents = sampler.Sample(cfg, start, sigmas, context);

        var stepsX = g.Get(prefix + "steps_x");
        var stepsD = g.Get(prefix + (run == "ddim" ? "steps_pred_x0" : "steps_denoised"));
        Assert.Equal(stepsX.shape[0], xs.Count);
        for (int i = 0; i < xs.Count; i++)
        {
            TensorAssert.CloseRelativeToRms(stepsX[i], xs[i], RelativeTolerance, $"{run} steps_x[{i}]");
            TensorAssert.CloseRelativeToRms(stepsD[i], ds[i], RelativeTolerance, $"{run} steps_denoised[{i}]");
        }
        TensorAssert.CloseRelativeToRms(g.Get(prefix + "latents"), latents, RelativeTolerance, run + " latents");

        if (g.Has(prefix + "ancestral_noise"))
        {
            var expectedNoise = g.Get(prefix + "ancestral_noise");
            Assert.Equal(expectedNoise.shape[0], drawn.Count);
            for (int i = 0; i < drawn.Count; i++) Assert.Equal(expectedNoise[i].data<float>().ToArray(), drawn[i].data<float>().ToArray());
        }
        else
        {
            Assert.Empty(drawn);
        }

        if (g.Has(prefix + "steps_sigma_quantized"))
        {
            var quantized = sigmas.Take(sigmas.Length - 1).Select(s => denoiser.Timestep(s).Sigma).ToArray();
            TensorAssert.Relative(g.Doubles(prefix + "steps_sigma_quantized"), quantized, 1e-6, run + " quantized sigmas");
        }
    }

    /// <summary>(cond, uncond) of the run: the text-encoder outputs (SD1/SD2) or crossattn + vector (SDXL).</summary>
    public static (Conditioning Cond, Conditioning Uncond) ReadConditioning(GoldenTensors g, GoldenModel which)
    {
        if (which == GoldenModel.Sdxl)
        {
            return (new Conditioning(g.Get("sample.cond.crossattn"), g.Get("sample.cond.vector")),
                    new Conditioning(g.Get("sample.uncond.crossattn"), g.Get("sample.uncond.vector")));
        }
        return (new Conditioning(g.Get("sample.cond")), new Conditioning(g.Get("sample.uncond")));
    }
}
