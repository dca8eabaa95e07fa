using System.Diagnostics;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// The step loop A1111-style template trainings (textual inversion, hypernetworks) share: micro-batches from the
/// dataset's seeded epoch order, flips and template prompts from <see cref="StepRandom"/>, noise and timesteps from a
/// generator seeded per micro-batch (so a run is a function of the seed and resumes bit for bit), gradient
/// accumulation, the rate schedule, smoothed-loss progress and resumable checkpoints. The trainer supplies the loss.
/// </summary>
internal static class TemplateTrainingLoop
{
    /// <summary>One micro-batch's inputs: the images (and whether each is flipped), cached latents, filled prompts, noise and integer timesteps.</summary>
    public sealed record MicroBatch(long Index, IReadOnlyList<TrainingImage> Images, IReadOnlyList<bool> Flips, Tensor Latents,
        IReadOnlyList<string> Prompts, Tensor Noise, Tensor Timesteps);

    /// <returns>The step reached and the last step's loss.</returns>
    public static (long Step, double LastLoss) Run(TemplateTrainingOptions options, TrainingDataset dataset, LatentCache latents,
        IReadOnlyList<string> templates, string name, TrainingOptimizer optimizer, LearningRateSchedule schedule, long startStep,
        long? stopAfterStep, Action<long> save, IProgress<TrainingProgress>? progress, Func<MicroBatch, Tensor> loss)
    {
        var cursor = new EpochBatchCursor(dataset, options.Seed, options.BatchSize);
        var clock = Stopwatch.StartNew();
        double smoothed = double.NaN, lastLoss = double.NaN;
        long step = startStep;
        while (step < options.MaxSteps)
        {
            double stepLoss = 0;
            for (int a = 0; a < options.GradientAccumulation; a++)
            {
                long micro = step * options.GradientAccumulation + a;
                var batch = cursor.At(micro);
                using var scope = NewDisposeScope();
                var random = new StepRandom(options.Seed, "batch", micro);
                var flips = batch.Select(_ => options.FlipAugment && random.NextDouble() < 0.5).ToArray();
                var x0 = cat(batch.Select((i, k) => latents.Get(i, flips[k])).ToArray(), 0);
                var prompts = batch.Select(i => PromptTemplates.Fill(templates, name, i.Caption, random, options.ShuffleTags, options.TagDropout)).ToList();
                using var generator = new Generator((ulong)StepRandom.SeedFor(options.Seed, "noise", micro));
                var noise = randn(x0.shape, ScalarType.Float32, generator: generator);
                var t = randint(0, KohyaNoiseSchedule.TrainTimesteps, [x0.shape[0]], ScalarType.Int64, generator: generator);
                var value = loss(new MicroBatch(micro, batch, flips, x0, prompts, noise, t));
                (value / options.GradientAccumulation).backward();
                stepLoss += value.item<float>() / options.GradientAccumulation;
            }
            double rate = schedule.At(step);
            optimizer.Step(rate);
            optimizer.ZeroGrad();
            step++;

            lastLoss = stepLoss;
            smoothed = double.IsNaN(smoothed) ? stepLoss : 0.9 * smoothed + 0.1 * stepLoss;
            double speed = (step - startStep) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            progress?.Report(new TrainingProgress(step, options.MaxSteps, stepLoss, smoothed, rate, speed,
                TimeSpan.FromSeconds((options.MaxSteps - step) / Math.Max(speed, 1e-9))));
            bool stopping = stopAfterStep == step;
            if ((options.SaveEvery > 0 && step % options.SaveEvery == 0) || step == options.MaxSteps || stopping) save(step);
            if (stopping) break;
        }
        return (step, lastLoss);
    }
}
