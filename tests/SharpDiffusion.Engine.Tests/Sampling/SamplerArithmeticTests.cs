using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Sampling.Samplers;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// Every sampler (including the two-evaluation ones the goldens cannot replay directly: Heun, DPM2, DPM2 a,
/// DPM++ 2S a) against the float64 formulas of <see cref="ReferenceSamplers"/>, with an analytic denoiser
/// <c>D(x, σ) = x/(1+σ²) + 0.3·σ/(1+σ²)·tanh(x)</c>.
/// </summary>
public class SamplerArithmeticTests
{
    private static readonly DiscreteSchedule Sd = DiscreteSchedule.ScaledLinear();

    private sealed class AnalyticDenoiser : IGuidedDenoiser
    {
        public List<double> Sigmas { get; } = new();

        public Tensor Denoise(Tensor x, double sigma)
        {
            Sigmas.Add(sigma);
            double k = 1 / (1 + sigma * sigma);
            return x * k + x.tanh() * (0.3 * sigma * k);
        }

        public static double[] Reference(double[] x, double sigma)
        {
            double k = 1 / (1 + sigma * sigma);
            return x.Select(v => v * k + Math.Tanh(v) * 0.3 * sigma * k).ToArray();
        }
    }

    public static TheoryData<string, ScheduleType> Cases()
    {
        var data = new TheoryData<string, ScheduleType>();
        // The samplers with a float64 reference in ReferenceSamplers; the A1111 1.10 additions are checked against
        // their goldens (A1111SamplerGoldenTests).
        foreach (var alias in new[] { "euler", "euler_ancestral", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2m", "dpmpp_2s_ancestral", "ddim" })
        {
            data.Add(alias, ScheduleType.Uniform);
            if (alias != "ddim") data.Add(alias, ScheduleType.Karras);
        }
        data.Add("dpmpp_2m", ScheduleType.Exponential);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SamplerMatchesFloat64Formulas(string alias, ScheduleType type)
    {
        var sampler = SamplerRegistry.Create(alias, a1111SigmaQuirks: false);
        var sigmas = sampler.Sigmas(Sd, 10, type);
        var shape = new long[] { 1, 4, 4, 4 };
        using var unit = new TorchCpuNoise(3).Randn(shape);
        using var start = sampler.InitialLatent(unit, sigmas[0]);
        var noiseDraws = new List<float[]>();
        using (var source = new TorchCpuNoise(7))
        {
            for (int i = 0; i < sigmas.Length; i++)
            {
                using var n = source.Randn(shape);
                noiseDraws.Add(n.data<float>().ToArray());
            }
        }

        int drawn = 0;
        var xs = new List<float[]>();
        var context = new SamplerContext
        {
            AncestralNoise = () => tensor(noiseDraws[drawn++]).reshape(shape),
            Callback = step => xs.Add(step.X.data<float>().ToArray()),
        };
        var model = new AnalyticDenoiser();
        using var result = sampler.Sample(model, start, sigmas, context);

        int referenceDrawn = 0;
        var referenceXs = new List<double[]>();
        var expected = ReferenceSamplers.Run(alias, AnalyticDenoiser.Reference, start.data<float>().ToArray().Select(v => (double)v).ToArray(), sigmas,
            () => noiseDraws[referenceDrawn++].Select(v => (double)v).ToArray(), referenceXs);

        Assert.Equal(referenceDrawn, drawn);
        Assert.Equal(referenceXs.Count, xs.Count);
        double rms = Math.Sqrt(expected.Average(v => v * v));
        Assert.True(rms > 1e-3, "degenerate reference");
        AssertClose(expected, result.data<float>().ToArray(), 1e-5, rms, $"{alias}/{type} result");
        for (int i = 0; i < xs.Count; i++) AssertClose(referenceXs[i], xs[i], 1e-5, Math.Sqrt(referenceXs[i].Average(v => v * v)), $"{alias}/{type} x[{i}]");
    }

    private static void AssertClose(double[] expected, float[] actual, double relative, double rms, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = expected.Select((v, k) => Math.Abs(v - actual[k])).Max();
        Assert.True(worst <= relative * rms, $"{what}: max abs diff {worst:G4} > {relative} x rms {rms:G4}");
    }

    [Fact]
    public void TwoEvaluationSamplersCallTheModelAtTheRightSigmas()
    {
        var sigmas = Sd.GetSigmas(4, ScheduleType.Uniform);
        using var x = ones(1, 4, 2, 2);
        var heun = new AnalyticDenoiser();
        using (new HeunSampler().Sample(heun, x, sigmas)) { }
        // Each step to a non-zero sigma evaluates at σ_i then σ_{i+1}; the last is Euler (one call).
        Assert.Equal(new[] { sigmas[0], sigmas[1], sigmas[1], sigmas[2], sigmas[2], sigmas[3], sigmas[3] }, heun.Sigmas);
        var dpm2 = new AnalyticDenoiser();
        using (new Dpm2Sampler().Sample(dpm2, x, sigmas)) { }
        Assert.Equal(7, dpm2.Sigmas.Count);
        Assert.Equal(Math.Sqrt(sigmas[0] * sigmas[1]), dpm2.Sigmas[1], 1e-5 * sigmas[0]);
    }

    [Fact]
    public void LmsCoefficientsMatchExactPolynomialIntegrals()
    {
        var sigmas = Sd.GetSigmas(8, ScheduleType.Uniform);
        for (int i = 0; i < 8; i++)
        {
            int order = Math.Min(i + 1, 4);
            double sum = 0;
            for (int j = 0; j < order; j++)
            {
                double c = LmsSampler.LinearMultistepCoefficient(order, sigmas, i, j);
                Assert.Equal(ReferenceSamplers.LagrangeIntegral(sigmas, i, j, order), c, 1e-12);
                sum += c;
            }
            // The basis sums to 1, so the coefficients sum to the step length.
            Assert.Equal(sigmas[i + 1] - sigmas[i], sum, 1e-10);
        }
    }

    [Fact]
    public void A1111Dpm2DropsTheNextToLastSigma()
    {
        var plain = SamplerRegistry.Create("DPM2", a1111SigmaQuirks: false).Sigmas(Sd, 8, ScheduleType.Karras);
        var a1111 = SamplerRegistry.Create("DPM2").Sigmas(Sd, 8, ScheduleType.Karras);
        var nine = Sd.GetSigmas(9, ScheduleType.Karras);
        Assert.Equal(Sd.GetSigmas(8, ScheduleType.Karras), plain);
        Assert.Equal(nine.Take(8).Append(0.0).ToArray(), a1111);
        Assert.Equal(9, a1111.Length);
        Assert.True(SamplerRegistry.Create("DPM2 a").DiscardNextToLastSigma);
        Assert.False(SamplerRegistry.Create("Euler").DiscardNextToLastSigma);
    }

    [Fact]
    public void A1111DdimSkipsCompVisLastStep()
    {
        var compVis = SamplerRegistry.Create("DDIM", a1111SigmaQuirks: false).Sigmas(Sd, 8, ScheduleType.Uniform);
        var a1111 = SamplerRegistry.Create("DDIM").Sigmas(Sd, 8, ScheduleType.Uniform);
        Assert.Equal(9, compVis.Length);
        Assert.Equal((double)Sd.Sigmas[0], compVis[^1]);
        Assert.Equal(compVis.Take(8).ToArray(), a1111);
        Assert.Equal((double)Sd.Sigmas[1], a1111[^1]);
        // 1000 steps: range(0, 1000, 1) + 1 is clipped to 999.
        Assert.Equal(999, Sd.DdimTimesteps(1000)[^1]);
        Assert.Equal(999, Sd.DdimTimesteps(1000)[^2]);
    }

    [Fact]
    public void AncestralSamplersNeedANoiseSource()
    {
        var sigmas = Sd.GetSigmas(3, ScheduleType.Uniform);
        using var x = ones(1, 4, 2, 2);
        var e = Assert.Throws<InvalidOperationException>(() => new EulerAncestralSampler().Sample(new AnalyticDenoiser(), x, sigmas));
        Assert.Contains("AncestralNoise", e.Message);
    }
}
