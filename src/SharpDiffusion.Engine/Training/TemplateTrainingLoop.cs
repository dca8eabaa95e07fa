using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// The micro-batches A1111-style template trainings (textual inversion, hypernetworks) share, run by
/// <see cref="TrainingStepLoop"/>: the dataset's seeded epoch order, flips and template prompts from
/// <see cref="StepRandom"/>, noise and timesteps from a generator seeded per micro-batch. The trainer supplies the loss.
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
        return new TrainingStepLoop
        {
            MaxSteps = options.MaxSteps,
            StartStep = startStep,
            StopAfterStep = stopAfterStep,
            GradientAccumulation = options.GradientAccumulation,
            SaveEvery = options.SaveEvery,
            Optimizers = [new OptimizerStep(optimizer, schedule)],
            Save = save,
            MicroLoss = micro =>
            {
                var batch = cursor.At(micro);
                var random = new StepRandom(options.Seed, "batch", micro);
                var flips = batch.Select(_ => options.FlipAugment && random.NextDouble() < 0.5).ToArray();
                var x0 = cat(batch.Select((i, k) => latents.Get(i, flips[k])).ToArray(), 0);
                var prompts = batch.Select(i => PromptTemplates.Fill(templates, name, i.Caption, random, options.ShuffleTags, options.TagDropout)).ToList();
                using var generator = new Generator((ulong)StepRandom.SeedFor(options.Seed, "noise", micro));
                var noise = randn(x0.shape, ScalarType.Float32, generator: generator);
                var t = randint(0, KohyaNoiseSchedule.TrainTimesteps, [x0.shape[0]], ScalarType.Int64, generator: generator);
                return loss(new MicroBatch(micro, batch, flips, x0, prompts, noise, t));
            },
        }.Run(progress);
    }
}
