using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// A1111's Restart sampler (<c>sd_samplers_extra.restart_sampler</c>, Xu et al. 2023): Heun steps along the sigmas;
/// from 20 steps on, the run uses Karras sigmas for steps - 9·k steps and, after reaching sigma ≈ 0.1, jumps back up
/// to sigma ≈ 2 with fresh noise and walks down again (9 restart steps, k = 1 times; 36+ steps: steps/4, k = 2).
/// </summary>
public sealed class RestartSampler : Sampler
{
    public override string Name => "Restart";

    public override string Alias => "restart";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        var steps = StepList(sigmas);
        var current = x;
        double? last = null;
        for (int i = 0; i < steps.Count; i++)
        {
            using var scope = NewDisposeScope();
            var (old, next) = steps[i];
            Tensor start = current;
            if (last is { } previous && previous < old)
            {
                float jump = MathF.Sqrt((float)(old * old - previous * previous));
                start = current + DrawNoise(context, current) * context.SNoise * jump;
            }
            var denoised = model.Denoise(start, old);
            var d = (start - denoised) / (float)old;
            Report(context, i, steps.Count, old, start, denoised);
            float dt = (float)(next - old);
            Tensor result;
            if (next == 0)
            {
                result = start + d * dt;
            }
            else
            {
                var x2 = start + d * dt;
                var d2 = (x2 - model.Denoise(x2, next)) / (float)next;
                result = start + (d + d2) / 2 * dt;
            }
            current = Advance(current, result.DetachFromDisposeScope(), x);
            last = next;
        }
        return current;
    }

    /// <summary>The (old, new) sigma pairs the sampler walks, restart segments included.</summary>
    public static IReadOnlyList<(double Old, double New)> StepList(IReadOnlyList<double> sigmas)
    {
        int steps = sigmas.Count - 1;
        var list = sigmas.ToArray();
        int restartSteps = 0, restartTimes = 0;
        bool restart = steps >= 20;
        if (restart)
        {
            restartSteps = 9;
            restartTimes = 1;
            if (steps >= 36)
            {
                restartSteps = steps / 4;
                restartTimes = 2;
            }
            list = DiscreteSchedule.KarrasSigmas(steps - restartSteps * restartTimes, sigmas[^2], sigmas[0]);
        }
        int restartIndex = restart ? NearestIndex(list, 0.1) : -1;
        var pairs = new List<(double, double)>();
        for (int i = 0; i < list.Length - 1; i++)
        {
            pairs.Add((list[i], list[i + 1]));
            if (i + 1 != restartIndex) continue;
            int minIndex = i + 1, maxIndex = NearestIndex(list, 2.0);
            if (maxIndex >= minIndex) continue;
            var karras = DiscreteSchedule.KarrasSigmas(restartSteps + 1, list[minIndex], list[maxIndex]);
            var restartSigmas = karras.Take(karras.Length - 1).ToArray();
            for (int time = 0; time < restartTimes; time++)
            {
                for (int k = 0; k < restartSigmas.Length - 1; k++) pairs.Add((restartSigmas[k], restartSigmas[k + 1]));
            }
        }
        return pairs;
    }

    /// <summary><c>argmin |sigmas - value|</c> in float32 (first on ties).</summary>
    private static int NearestIndex(double[] sigmas, double value)
    {
        int best = 0;
        float bestDistance = float.PositiveInfinity;
        for (int i = 0; i < sigmas.Length; i++)
        {
            float d = MathF.Abs((float)sigmas[i] - (float)value);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = i;
            }
        }
        return best;
    }
}
