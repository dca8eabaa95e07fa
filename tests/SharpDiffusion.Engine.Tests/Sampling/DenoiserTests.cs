using SharpDiffusion.Engine.Sampling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>Denoiser scalings, timesteps and one call against the <c>denoiser.*</c> goldens (README §8, §9.4), and CFG.</summary>
public class DenoiserTests
{
    private static readonly DiscreteSchedule Sd = DiscreteSchedule.ScaledLinear();

    /// <summary>Returns a fixed output and records what it was given.</summary>
    private sealed class FixedModel : IDiffusionModel
    {
        private readonly Func<Tensor, Tensor, Conditioning, Tensor> output;

        public FixedModel(Func<Tensor, Tensor, Conditioning, Tensor> output) => this.output = output;

        public Tensor? LastX { get; private set; }
        public float[]? LastT { get; private set; }
        public Conditioning? LastCond { get; private set; }

        public Tensor Predict(Tensor x, Tensor t, Conditioning cond)
        {
            LastX = x.clone().DetachFromDisposeScope();
            LastT = t.data<float>().ToArray();
            LastCond = cond;
            return output(x, t, cond);
        }
    }

    [Fact]
    public void VDenoiserScalingsAndTimestepsMatchSd2vGolden()
    {
        using var g = GoldenTensors.Open("tiny_sd2v_golden.safetensors");
        var denoiser = new VDenoiser(new FixedModel((x, _, _) => x), Sd);
        var sigmas = g.Doubles("denoiser.sigmas");
        var c = sigmas.Select(s => denoiser.Scalings((float)s)).ToArray();
        TensorAssert.Relative(g.Doubles("denoiser.c_skip"), c.Select(v => (double)(float)v.Skip).ToArray(), 1e-6, "c_skip");
        TensorAssert.Relative(g.Doubles("denoiser.c_out"), c.Select(v => (double)(float)v.Out).ToArray(), 1e-6, "c_out");
        TensorAssert.Relative(g.Doubles("denoiser.c_in"), c.Select(v => (double)(float)v.In).ToArray(), 1e-6, "c_in");
        TensorAssert.Absolute(g.Doubles("denoiser.t"), sigmas.Select(s => denoiser.Timestep(s).T).ToArray(), 1e-3, "t");
    }

    [Fact]
    public void VDenoiserCallMatchesSd2vGolden()
    {
        using var g = GoldenTensors.Open("tiny_sd2v_golden.safetensors");
        using var x = g.Get("denoiser.x");
        using var v = g.Get("denoiser.model_output");
        using var expected = g.Get("denoiser.denoised");
        using var context = g.Get("unet.case1.context");
        var sigma = g.Doubles("denoiser.sigma");
        var model = new FixedModel((_, _, _) => v.clone());
        var denoiser = new VDenoiser(model, Sd);
        using var denoised = denoiser.Denoise(x, sigma, new Conditioning(context));
        TensorAssert.MaxAbs(expected, denoised, 1e-4, "denoised");
        // The model saw x·c_in and the fractional timesteps.
        using var cIn = tensor(sigma.Select(s => (float)(1 / Math.Sqrt(s * s + 1))).ToArray()).reshape(2, 1, 1, 1);
        using var scaled = x * cIn;
        TensorAssert.MaxAbs(scaled, model.LastX!, 1e-6, "model input");
        Assert.Equal(sigma.Select(Sd.SigmaToT).Select(t => (float)t).ToArray(), model.LastT);
        Assert.Same(context, model.LastCond!.CrossAttention);
    }

    [Fact]
    public void EpsDenoiserScalingsTimestepsAndSgmQuantisationMatchSdxlGolden()
    {
        using var g = GoldenTensors.Open("tiny_sdxl_golden.safetensors");
        var model = new FixedModel((x, _, _) => x);
        var kdiff = new EpsDenoiser(model, Sd);
        var sgm = new EpsDenoiser(model, Sd, TimestepMode.SgmQuantized);
        var sigmas = g.Doubles("denoiser.sigmas");
        var c = sigmas.Select(s => kdiff.Scalings((float)s)).ToArray();
        TensorAssert.Relative(g.Doubles("denoiser.c_skip"), c.Select(v => v.Skip).ToArray(), 1e-6, "c_skip");
        TensorAssert.Relative(g.Doubles("denoiser.c_out"), c.Select(v => (double)(float)v.Out).ToArray(), 1e-6, "c_out");
        TensorAssert.Relative(g.Doubles("denoiser.c_in"), c.Select(v => (double)(float)v.In).ToArray(), 1e-6, "c_in");
        TensorAssert.Absolute(g.Doubles("denoiser.kdiff_t"), sigmas.Select(s => kdiff.Timestep(s).T).ToArray(), 1e-3, "kdiff_t");
        Assert.Equal(g.Doubles("denoiser.sgm_idx"), sigmas.Select(s => sgm.Timestep(s).T).ToArray());
        TensorAssert.Relative(g.Doubles("denoiser.sgm_sigma_quantized"), sigmas.Select(s => sgm.Timestep(s).Sigma).ToArray(), 2e-7, "sgm sigma");
    }

    [Fact]
    public void EpsDenoiserComputesXMinusSigmaEps()
    {
        using var x = arange(32, dtype: ScalarType.Float32).reshape(2, 4, 2, 2) / 7.0;
        using var eps = full(new long[] { 2, 4, 2, 2 }, 0.5f);
        using var context = zeros(2, 3, 5);
        var model = new FixedModel((_, _, _) => eps.clone());
        var denoiser = new EpsDenoiser(model, Sd);
        using var denoised = denoiser.Denoise(x, new[] { 2.0, 0.5 }, new Conditioning(context));
        using var expected = x - cat(new[] { full(1, 4, 2, 2, 1.0f), full(1, 4, 2, 2, 0.25f) }, 0);
        TensorAssert.MaxAbs(expected, denoised, 1e-6, "denoised");
        Assert.Throws<ArgumentException>(() => denoiser.Denoise(x, new[] { 1.0 }, new Conditioning(context)));
    }

    /// <summary>Echoes a per-row value from the conditioning so the CFG batch order is visible.</summary>
    private sealed class ConditioningEchoDenoiser : IDenoiser
    {
        public DiscreteSchedule Schedule => Sd;
        public int Calls { get; private set; }
        public long LastBatch { get; private set; }
        public float[]? LastVectorRows { get; private set; }

        public Tensor Denoise(Tensor x, IReadOnlyList<double> sigma, Conditioning cond)
        {
            Calls++;
            LastBatch = x.shape[0];
            LastVectorRows = cond.Vector!.select(1, 0).data<float>().ToArray();
            // D = x + context row mean: cond rows add 1, uncond rows add 0.
            return x + cond.CrossAttention.mean(new long[] { 1, 2 }).reshape(-1, 1, 1, 1);
        }
    }

    [Fact]
    public void CfgRunsUncondThenCondAsOneBatch()
    {
        var echo = new ConditioningEchoDenoiser();
        using var condContext = ones(1, 3, 5);
        using var uncondContext = zeros(1, 3, 5);
        using var condVector = full(1, 2, 2.0f);
        using var uncondVector = full(1, 2, -2.0f);
        using var cfg = new CfgDenoiser(echo, new Conditioning(condContext, condVector), new Conditioning(uncondContext, uncondVector), 7.0);
        using var x = zeros(2, 4, 2, 2);
        using var d = cfg.Denoise(x, 3.0);
        Assert.Equal(1, echo.Calls);
        Assert.Equal(4, echo.LastBatch);
        Assert.Equal(new[] { -2f, -2f, 2f, 2f }, echo.LastVectorRows);
        // u + 7·(c - u) = 0 + 7·1.
        Assert.All(d.data<float>().ToArray(), v => Assert.Equal(7f, v));
        using var d2 = cfg.Denoise(x, 1.0);
        Assert.Equal(2, echo.Calls);
    }
}
