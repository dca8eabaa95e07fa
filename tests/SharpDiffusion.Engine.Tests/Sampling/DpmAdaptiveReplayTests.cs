using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Sampling.Samplers;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// DPM adaptive replayed attempt by attempt against A1111's run (samplers README §4.5, §6): each attempt starts from
/// the golden x, time s and step size h, gets the golden model outputs for its three calls, and must make the golden
/// decision with the golden error and next h (rel ≤ 1e-3), call the model on the golden inputs and land on the golden
/// latents (≤ 1e-3 × rms). A free run cannot be held to this (README §6: float32 noise moves its later steps), the
/// replay can: every attempt's inputs are A1111's.
/// </summary>
public class DpmAdaptiveReplayTests
{
    /// <summary>Returns the golden CFG-denoised output of each call in order, after checking that the call is the golden one.</summary>
    private sealed class GoldenCalls(Tensor inputs, Tensor outputs, float[] sigmas) : IGuidedDenoiser
    {
        public int Next { get; private set; }

        public Tensor Denoise(Tensor x, double sigma)
        {
            int k = Next++;
            Assert.True(k < sigmas.Length, $"more model calls than A1111's {sigmas.Length}");
            Assert.True(Math.Abs(sigma - sigmas[k]) <= 1e-5 * sigmas[k], $"call {k}: sigma {sigma}, A1111 {sigmas[k]}");
            TensorAssert.CloseRelativeToRms(inputs[k], x, 1e-3, $"call {k} input");
            return outputs[k].clone();
        }
    }

    [Fact]
    public void EveryAttemptMakesA1111sDecisionWithItsErrorAndStepSize()
    {
        var spec = A1111SamplerGoldenTests.ReadRun(GoldenModel.Sd1, "dpm_adaptive");
        var adaptive = spec.Index.GetProperty("adaptive");
        var attempts = adaptive.GetProperty("attempts").EnumerateArray().ToList();
        float tEnd = (float)adaptive.GetProperty("t_end").GetDouble();
        Assert.Equal(23, attempts.Count);

        using var g = GoldenTensors.Open(A1111SamplerGoldenTests.FileOf(GoldenModel.Sd1) + ".safetensors");
        using var scope = NewDisposeScope();
        const string prefix = "sample.dpm_adaptive.";
        var callsX = g.Get(prefix + "calls_x");
        var stepsX = g.Get(prefix + "steps_x");
        var noise = g.Get(prefix + "rng_noise");
        var calls = new GoldenCalls(callsX, g.Get(prefix + "calls_out"), g.Floats(prefix + "calls_sigma"));
        var solver = new DpmSolver(calls);

        Tensor xPrev = callsX[0]; // k-diffusion: x_prev starts as x
        int draws = 0;
        for (int i = 0; i < attempts.Count; i++)
        {
            var golden = attempts[i];
            float s = (float)golden.GetProperty("s").GetDouble();
            double h = golden.GetProperty("h").GetDouble();
            Assert.Equal(3 * i, calls.Next);
            var attempt = DpmAdaptiveSampler.Try(solver, callsX[3 * i], xPrev, s, h, tEnd, eta: 1.0);

            Assert.Equal((float)golden.GetProperty("t").GetDouble(), attempt.T);
            double error = golden.GetProperty("error").GetDouble(), hNext = golden.GetProperty("h_next").GetDouble();
            Assert.True(Math.Abs(attempt.Error - error) <= 1e-3 * error, $"attempt {i}: error {attempt.Error}, A1111 {error}");
            Assert.True(Math.Abs(h * attempt.Factor - hNext) <= 1e-3 * hNext, $"attempt {i}: next h {h * attempt.Factor}, A1111 {hNext}");
            Assert.True(golden.GetProperty("accepted").GetBoolean() == attempt.Accepted, $"attempt {i}: accepted {attempt.Accepted}, A1111 the opposite (error {error})");
            if (!attempt.Accepted) continue;
            xPrev = attempt.Low;
            var x = attempt.High + noise[draws++] * attempt.NoiseScale;
            TensorAssert.CloseRelativeToRms(stepsX[i], x, 1e-3, $"attempt {i} latents");
        }
        Assert.Equal(20, draws);
        Assert.Equal(noise.shape[0], draws);
        Assert.Equal(69, calls.Next);
    }
}
