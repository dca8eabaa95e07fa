using SharpDiffusion.Architectures;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// kohya train_network.py's loop for a LoRA on SD 1.x / 2.x (and sdxl_train_network's on SDXL): per micro-batch, cached latents of one bucket, captions
/// processed (shuffle / keep / dropout), noise (plus offset), uniform integer timesteps, the U-Net's eps or v
/// prediction, l2 loss with optional min-SNR weights, backward through the LoRA branches only; per optimizer step,
/// gradient clipping, AdamW or Lion with the schedule's rate (separate rates for U-Net and text encoder). Every random
/// draw of step s is a function of (seed, s), so <c>--resume</c> continues exactly as an uninterrupted run would.
/// </summary>
public sealed class LoraTrainer
{
    private const int ContextLength = 77;

    /// <summary>Trains and writes <see cref="LoraTrainingOptions.OutputPath"/>. <paramref name="stopAfterStep"/> (tests) ends early after a saved checkpoint.</summary>
    public static LoraTrainingResult Train(StableDiffusionCheckpoint checkpoint, LoraTrainingOptions options, IProgress<TrainingProgress>? progress = null,
        long? stopAfterStep = null)
    {
        Validate(options);
        bool v = checkpoint.Prediction == Prediction.V;
        string statePath = options.StatePath ?? Path.ChangeExtension(options.OutputPath, null) + ".train";
        int resolution = options.Resolution ?? checkpoint.Vae.Config.DownsampleFactor * 64;
        var buckets = new AspectRatioBuckets(resolution, options.BucketStep);
        var dataset = TrainingDataset.Scan(options.DataPath, buckets);
        if (dataset.Images.Count == 0) throw new InvalidDataException($"{options.DataPath}: no readable training images");
        foreach (var image in dataset.Images)
        {
            if (image.Bucket.Width % checkpoint.SizeMultiple != 0 || image.Bucket.Height % checkpoint.SizeMultiple != 0)
                throw new InvalidDataException($"{image.Path}: bucket {image.Bucket.Width}x{image.Bucket.Height} is not a multiple of {checkpoint.SizeMultiple}, which this model needs; choose --resolution/--bucket-step accordingly");
        }

        var networkOptions = options.NetworkOptions();
        using var network = LoraTrainingNetwork.Create(checkpoint, networkOptions, options.Seed);
        var unetParameters = network.Modules.Where(m => !m.IsTextEncoder).SelectMany(m => m.NamedParameters()).ToList();
        var textParameters = network.Modules.Where(m => m.IsTextEncoder).SelectMany(m => m.NamedParameters()).ToList();
        int batchesPerEpoch = dataset.EpochBatches(options.Seed, 0, options.BatchSize).Count;
        int stepsPerEpoch = (batchesPerEpoch + options.GradientAccumulation - 1) / options.GradientAccumulation;
        int maxSteps = options.TotalSteps(batchesPerEpoch);
        var samplePrompts = options.SampleEvery > 0 && options.SamplePromptsPath != null ? TrainingSamples.Read(options.SamplePromptsPath) : null;
        var optimizers = new List<TrainingOptimizer> { CreateOptimizer(options, unetParameters), CreateOptimizer(options, textParameters) };
        var unetSchedule = LearningRateSchedule.Create(options.Schedule, options.UnetLearningRate ?? options.LearningRate, maxSteps, options.WarmupSteps, options.ScheduleCycles);
        var textSchedule = LearningRateSchedule.Create(options.Schedule, options.TextEncoderLearningRate ?? options.LearningRate, maxSteps, options.WarmupSteps, options.ScheduleCycles);
        string fingerprint = Fingerprint(options, networkOptions, checkpoint);

        long startStep = 0;
        if (options.ResumePath != null) startStep = TrainingState.Load(options.ResumePath, network, optimizers, fingerprint);

        using var schedule = new KohyaNoiseSchedule();
        var latents = new LatentCache(Path.Combine(statePath, "latents"), checkpoint.Vae, checkpoint.VaePath ?? checkpoint.Path);
        using var textCache = new FrozenTextCache(checkpoint, options.ClipSkip);
        var epochBatches = new Dictionary<long, IReadOnlyList<TrainingImage[]>>();
        DateTimeOffset startedAt = DateTimeOffset.UtcNow;

        network.Attach();
        long step;
        double lastLoss;
        try
        {
            (step, lastLoss) = new TrainingStepLoop
            {
                MaxSteps = maxSteps,
                StartStep = startStep,
                StopAfterStep = stopAfterStep,
                GradientAccumulation = options.GradientAccumulation,
                SaveEvery = options.SaveEvery,
                // kohya (accelerate): an optimizer step never spans two epochs; an epoch's last step may accumulate
                // fewer micro-batches, each loss still divided by the accumulation count.
                MicroBatches = s =>
                {
                    long epoch = s / stepsPerEpoch;
                    int first = (int)(s % stepsPerEpoch) * options.GradientAccumulation;
                    return (epoch * batchesPerEpoch + first, Math.Min(options.GradientAccumulation, batchesPerEpoch - first));
                },
                MicroLoss = micro =>
                {
                    long epoch = micro / batchesPerEpoch;
                    if (!epochBatches.TryGetValue(epoch, out var batches))
                    {
                        epochBatches.Clear();
                        epochBatches[epoch] = batches = dataset.EpochBatches(options.Seed, epoch, options.BatchSize);
                    }
                    var batch = batches[(int)(micro % batchesPerEpoch)];
                    var random = new StepRandom(options.Seed, "batch", micro);
                    var flips = batch.Select(_ => options.FlipAugment && random.NextDouble() < 0.5).ToArray();
                    var x0 = cat(batch.Select((i, k) => latents.Get(i, flips[k])).ToArray(), 0);
                    var captions = batch.Select(i => CaptionProcessing.Process(i.KohyaCaption, options.Captions, random)).ToList();
                    using var generator = new Generator((ulong)StepRandom.SeedFor(options.Seed, "noise", micro));
                    var noise = randn(x0.shape, ScalarType.Float32, generator: generator);
                    if (options.NoiseOffset > 0)
                        noise = DiffusionLoss.ApplyNoiseOffset(noise, randn([x0.shape[0], x0.shape[1], 1, 1], ScalarType.Float32, generator: generator), options.NoiseOffset);
                    var t = randint(options.MinTimestep, options.MaxTimestep, [x0.shape[0]], ScalarType.Int64, generator: generator);
                    var (context, pooled) = Encode(checkpoint, captions, options, textCache);
                    var vector = TrainingConditioning.Vector(checkpoint, pooled, batch, flips);
                    var noisy = schedule.AddNoise(x0, noise, t);
                    var prediction = checkpoint.UNet.Forward(noisy, t, context, vector);
                    var target = DiffusionLoss.Target(schedule, x0, noise, t, v);
                    return DiffusionLoss.Compute(prediction, target, t, schedule, options.MinSnrGamma, v).Loss;
                },
                Clip = options.MaxGradNorm > 0 ? () => GradientClipping.ClipByNorm(network.NamedParameters().Select(p => p.Parameter), options.MaxGradNorm) : null,
                Optimizers = [new OptimizerStep(optimizers[0], unetSchedule), new OptimizerStep(optimizers[1], textSchedule)],
                ReportedRate = s => options.TrainUnet ? unetSchedule.At(s) : textSchedule.At(s),
                Save = s => TrainingState.Save(statePath, s, network, optimizers, fingerprint),
                AfterSave = samplePrompts == null ? null : s =>
                {
                    if (s % options.SampleEvery != 0) return;
                    TrainingSamples.Generate(checkpoint, samplePrompts, SamplesFolder(options.OutputPath), Path.GetFileNameWithoutExtension(options.OutputPath),
                        s, resolution, options.Seed, options.ClipSkip);
                },
            }.Run(progress);
        }
        finally
        {
            network.Detach();
            foreach (var optimizer in optimizers) optimizer.Dispose();
        }

        if (step == maxSteps)
        {
            LoraFileOutput.Write(options.OutputPath, network, checkpoint, new LoraFileOutput.TrainingFacts(
                dataset, resolution, options, startedAt, step, maxSteps, (int)((step + stepsPerEpoch - 1) / stepsPerEpoch)));
        }
        return new LoraTrainingResult(options.OutputPath, statePath, step, startStep, lastLoss, network.Modules.Count, dataset.Problems);
    }

    /// <summary>Where sample images go: <c>samples/</c> beside the output file.</summary>
    public static string SamplesFolder(string outputPath) => Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outputPath))!, "samples");

    private static void Validate(LoraTrainingOptions o)
    {
        if (o.Rank < 1) throw new ArgumentException("--rank must be at least 1");
        if (o.ConvRank < 0) throw new ArgumentException("--conv-rank must not be negative");
        if (o.MaxSteps < 1) throw new ArgumentException("--max-steps must be at least 1");
        if (o.Epochs < 1) throw new ArgumentException("--epochs must be at least 1");
        if (o.SampleEvery < 0) throw new ArgumentException("--sample-every must not be negative");
        if (o.SampleEvery > 0 && o.SamplePromptsPath == null) throw new ArgumentException("--sample-every needs --sample-prompts FILE");
        if (o.BatchSize < 1 || o.GradientAccumulation < 1) throw new ArgumentException("--batch and --grad-accum must be at least 1");
        if (!o.TrainUnet && !o.TrainTextEncoder) throw new ArgumentException("--train must name unet, te or both");
        if (o.MinTimestep < 0 || o.MaxTimestep > KohyaNoiseSchedule.TrainTimesteps || o.MinTimestep >= o.MaxTimestep)
            throw new ArgumentException("timesteps must satisfy 0 <= min < max <= 1000");
        if (o.Optimizer is not ("adamw" or "lion")) throw new ArgumentException($"--optimizer must be adamw or lion, not '{o.Optimizer}'");
    }

    private static TrainingOptimizer CreateOptimizer(LoraTrainingOptions o, IReadOnlyList<(string, TorchSharp.Modules.Parameter)> parameters) =>
        o.Optimizer == "lion" ? new LionOptimizer(parameters, weightDecay: o.WeightDecay ?? 0.0) : new AdamWOptimizer(parameters, weightDecay: o.WeightDecay ?? 0.01);

    /// <summary>The settings a resumed run must share with the run that wrote the checkpoint.</summary>
    private static string Fingerprint(LoraTrainingOptions o, LoraNetworkOptions network, StableDiffusionCheckpoint checkpoint) => JsonSerializer.Serialize(new
    {
        model = Path.GetFileName(checkpoint.Path),
        algo = network.AlgorithmName,
        rank = o.Rank,
        alpha = o.Alpha ?? o.Rank,
        conv_rank = network.ConvRank,
        conv_alpha = network.ConvAlpha,
        unet = o.TrainUnet,
        te = o.TrainTextEncoder,
        optimizer = o.Optimizer,
        batch = o.BatchSize,
        accum = o.GradientAccumulation,
        seed = o.Seed,
    });

    /// <summary>
    /// The U-Net context for captions: CLIP ids <c>[BOS] + tokens[:75] + [EOS]</c>, padded to 77 (SD1: EOS, SD2: 0, as
    /// their tokenizers pad), encoded as <see cref="TrainingConditioning"/> says per family. A frozen encoder's outputs
    /// are cached per caption.
    /// </summary>
    internal static (Tensor Context, Tensor? Pooled) Encode(StableDiffusionCheckpoint checkpoint, IReadOnlyList<string> captions, LoraTrainingOptions options,
        FrozenTextCache cache)
    {
        var rows = new List<Tensor>();
        var pooledRows = new List<Tensor>();
        foreach (var caption in captions)
        {
            Tensor row;
            Tensor? pooled;
            if (options.TrainTextEncoder)
            {
                using var ids = TokenIds(checkpoint, caption);
                (row, pooled) = TrainingConditioning.Encode(checkpoint, ids, options.ClipSkip);
            }
            else (row, pooled) = cache.Get(caption);
            rows.Add(row);
            if (pooled is { } p) pooledRows.Add(p);
        }
        return (cat(rows.ToArray(), 0), pooledRows.Count == 0 ? null : cat(pooledRows.ToArray(), 0));
    }

    /// <summary>
    /// kohya's SDXL size conditioning of a training image: original size (h, w), the crop top-left kohya's
    /// <c>BucketManager.get_crop_ltrb</c> computes (the offset of the image fitted inside its bucket, floor-divided;
    /// flipped: the bucket width minus the right edge), and the bucket as target size.
    /// </summary>
    internal static ImageSizeConditioning KohyaSizes(TrainingImage image, bool flipped = false)
    {
        var (bucketWidth, bucketHeight) = image.Bucket;
        double bucketAspect = bucketWidth / (double)bucketHeight, imageAspect = image.Width / (double)image.Height;
        double resizedWidth, resizedHeight;
        if (bucketAspect > imageAspect)
        {
            resizedWidth = bucketHeight * imageAspect;
            resizedHeight = bucketHeight;
        }
        else
        {
            resizedWidth = bucketWidth;
            resizedHeight = bucketWidth / imageAspect;
        }
        double left = Math.Floor((bucketWidth - resizedWidth) / 2);
        int cropTop = (int)Math.Floor((bucketHeight - resizedHeight) / 2);
        int cropLeft = (int)(flipped ? bucketWidth - (left + resizedWidth) : left);
        return new ImageSizeConditioning(image.Height, image.Width, cropTop, cropLeft, bucketHeight, bucketWidth);
    }

    private static Tensor TokenIds(StableDiffusionCheckpoint checkpoint, string caption) =>
        tensor(CaptionTokenIds.ForCaption(checkpoint, caption), [1, ContextLength]);
}
