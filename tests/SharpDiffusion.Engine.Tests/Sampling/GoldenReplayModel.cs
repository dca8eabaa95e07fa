using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Sampling.Samplers;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// A stand-in for the tiny U-Net that replays a golden run: on its k-th call it returns, for both CFG rows, the eps
/// (or v) that makes the denoiser produce the golden denoised value of that call. First calls of a step use the
/// stored <c>steps_denoised</c> (<c>steps_pred_x0</c> for DDIM); the second calls of Heun/DPM2 are derived in float64
/// from consecutive stored <c>steps_x</c>. It also checks what the engine passes: a batch of 2 with rows
/// [uncond, cond], equal timesteps per row, close to t(σ) of the expected call.
/// </summary>
internal sealed class GoldenReplayModel : IDiffusionModel, IDisposable
{
    private readonly List<(double Sigma, Tensor Denoised)> calls = new();
    private readonly DiscreteSchedule schedule;
    private readonly bool predictsV;
    private readonly TimestepMode mode;
    private readonly Tensor condContext;
    private readonly Tensor uncondContext;
    private int next;

    public GoldenReplayModel(GoldenModel which, string run)
    {
        schedule = DiscreteSchedule.ScaledLinear();
        predictsV = which.PredictsV();
        mode = GoldenSamplingHarness.Describe(run).Mode;
        using var g = GoldenTensors.Open(which.GoldenFile() + ".safetensors");
        var (cond, uncond) = GoldenSamplingHarness.ReadConditioning(g, which);
        condContext = cond.CrossAttention;
        uncondContext = uncond.CrossAttention;
        var sigmas = GoldenSamplingHarness.Sigmas(which, run, schedule);
        string prefix = $"sample.{run}.";
        using var stepsX = g.Get(prefix + "steps_x").to(ScalarType.Float64);
        using var stepsD = g.Get(prefix + (run == "ddim" ? "steps_pred_x0" : "steps_denoised")).to(ScalarType.Float64);
        using var latents = g.Get(prefix + "latents").to(ScalarType.Float64);
        int steps = (int)stepsX.shape[0];
        for (int i = 0; i < steps; i++)
        {
            double s = sigmas[i], sNext = sigmas[i + 1];
            var x = stepsX[i];
            var d = stepsD[i];
            calls.Add((s, d.clone().DetachFromDisposeScope()));
            if (sNext == 0 || (run != "heun" && run != "dpm_2")) continue;
            var xNext = i + 1 < steps ? stepsX[i + 1] : latents[0];
            var slope = (x - d) / s;
            if (run == "heun")
            {
                // x' = x + (d + d2)/2·dt, x2 = x + d·dt  ⇒  d2, then D2 = x2 - d2·σ_next.
                double dt = sNext - s;
                var x2 = x + slope * dt;
                var slope2 = (xNext - x) * (2 / dt) - slope;
                calls.Add((sNext, (x2 - slope2 * sNext).DetachFromDisposeScope()));
            }
            else
            {
                // x' = x + d2·(σ_next - σ), x2 = x + d·(σ_mid - σ)  ⇒  d2, then D2 = x2 - d2·σ_mid.
                double mid = Math.Exp((Math.Log(s) + Math.Log(sNext)) / 2);
                var x2 = x + slope * (mid - s);
                var slope2 = (xNext - x) / (sNext - s);
                calls.Add((mid, (x2 - slope2 * mid).DetachFromDisposeScope()));
            }
        }
    }

    public int Calls => next;

    public int ExpectedCalls => calls.Count;

    public Tensor Predict(Tensor x, Tensor t, Conditioning cond)
    {
        Assert.True(next < calls.Count, $"more model calls than the golden run made ({calls.Count})");
        var (sigma, denoised) = calls[next++];
        Assert.Equal(2, x.shape[0]);
        Assert.Equal(uncondContext.data<float>().ToArray(), cond.CrossAttention[0].data<float>().ToArray());
        Assert.Equal(condContext.data<float>().ToArray(), cond.CrossAttention[1].data<float>().ToArray());
        var ts = t.data<float>().ToArray();
        Assert.Equal(ts[0], ts[1]);
        double expectedT = mode == TimestepMode.SgmQuantized ? schedule.NearestTimestep(sigma) : schedule.SigmaToT(sigma);
        Assert.True(Math.Abs(ts[0] - expectedT) <= 1e-3, $"call {next - 1}: t = {ts[0]}, expected {expectedT} for sigma {sigma}");

        double cIn = 1 / Math.Sqrt(sigma * sigma + 1);
        using var scope = NewDisposeScope();
        var xk = x.to(ScalarType.Float64) / cIn;
        Tensor output;
        if (predictsV)
        {
            double cSkip = 1 / (sigma * sigma + 1), cOut = -sigma / Math.Sqrt(sigma * sigma + 1);
            output = (denoised - xk * cSkip) / cOut;
        }
        else
        {
            output = (xk - denoised) / sigma;
        }
        return output.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var (_, d) in calls) d.Dispose();
        condContext.Dispose();
        uncondContext.Dispose();
    }
}
