using System.Diagnostics;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>One optimizer of a training run and the rate its schedule gives at a step.</summary>
internal sealed record OptimizerStep(TrainingOptimizer Optimizer, LearningRateSchedule Schedule);

/// <summary>
/// The optimizer-step loop every trainer shares (LoRA, textual inversion, hypernetwork, checkpoint): each step
/// accumulates its micro-batches (each loss divided by the accumulation count before <c>backward</c>, each in its own
/// dispose scope), clips, steps every optimizer at its schedule's rate, zeroes the gradients, then reports the smoothed
/// loss, saves resumable state and runs the trainer's per-step extras. A run is a function of its seed and resumes bit
/// for bit: the trainer's micro-batch loss draws everything it needs from the micro-batch index.
/// </summary>
internal sealed class TrainingStepLoop
{
    public required long MaxSteps { get; init; }
    public required long StartStep { get; init; }

    /// <summary>Stop (saving state) after this step, as a kill would, for tests of resuming; null: run to the end.</summary>
    public long? StopAfterStep { get; init; }

    public required int GradientAccumulation { get; init; }

    /// <summary>Save state every N steps (0: only at the end or a stop).</summary>
    public long SaveEvery { get; init; }

    /// <summary>The smoothed loss's weight of the past: <c>keep·smoothed + (1 − keep)·loss</c>, written as two literals.</summary>
    public double SmoothingKeep { get; init; } = 0.9;
    public double SmoothingTake { get; init; } = 0.1;

    /// <summary>The index of step s's first micro-batch and how many it accumulates (kohya: fewer at an epoch's end).</summary>
    public Func<long, (long FirstMicro, int Count)>? MicroBatches { get; init; }

    /// <summary>The loss of micro-batch m (a tensor of the current dispose scope).</summary>
    public required Func<long, Tensor> MicroLoss { get; init; }

    /// <summary>Gradient clipping before the optimizers step; null: none.</summary>
    public Action? Clip { get; init; }

    public required IReadOnlyList<OptimizerStep> Optimizers { get; init; }

    /// <summary>The rate the progress line shows at a step; default the first optimizer's.</summary>
    public Func<long, double>? ReportedRate { get; init; }

    /// <summary>After the optimizers stepped (the step count already advanced), e.g. an EMA update.</summary>
    public Action<long>? AfterStep { get; init; }

    public required Action<long> Save { get; init; }

    /// <summary>After any save, e.g. sample images every N steps.</summary>
    public Action<long>? AfterSave { get; init; }

    /// <returns>The step reached and its loss.</returns>
    public (long Step, double LastLoss) Run(IProgress<TrainingProgress>? progress)
    {
        var clock = Stopwatch.StartNew();
        double smoothed = double.NaN, lastLoss = double.NaN;
        var reportedRate = ReportedRate ?? (s => Optimizers[0].Schedule.At(s));
        long step = StartStep;
        while (step < MaxSteps)
        {
            var (firstMicro, count) = MicroBatches?.Invoke(step) ?? (step * GradientAccumulation, GradientAccumulation);
            double stepLoss = 0;
            for (int a = 0; a < count; a++)
            {
                using var scope = NewDisposeScope();
                var loss = MicroLoss(firstMicro + a);
                (loss / GradientAccumulation).backward();
                stepLoss += loss.item<float>() / count;
            }
            Clip?.Invoke();
            foreach (var (optimizer, schedule) in Optimizers) optimizer.Step(schedule.At(step));
            foreach (var (optimizer, _) in Optimizers) optimizer.ZeroGrad();
            double rate = reportedRate(step);
            step++;
            AfterStep?.Invoke(step);

            lastLoss = stepLoss;
            smoothed = double.IsNaN(smoothed) ? stepLoss : SmoothingKeep * smoothed + SmoothingTake * stepLoss;
            double speed = (step - StartStep) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            progress?.Report(new TrainingProgress(step, MaxSteps, stepLoss, smoothed, rate, speed,
                TimeSpan.FromSeconds((MaxSteps - step) / Math.Max(speed, 1e-9))));
            bool stopping = StopAfterStep == step;
            if ((SaveEvery > 0 && step % SaveEvery == 0) || step == MaxSteps || stopping) Save(step);
            AfterSave?.Invoke(step);
            if (stopping) break;
        }
        return (step, lastLoss);
    }
}
