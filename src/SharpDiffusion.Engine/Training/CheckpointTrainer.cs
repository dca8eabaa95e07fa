using TorchSharp;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SharpDiffusion.Architectures;
using SharpDiffusion.Engine.Diagnostics;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Inspection;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// Trains the weights of a checkpoint itself (not an adapter): the VAE stage (LDM's autoencoder objective without
/// LPIPS/GAN: summed L1 per image plus kl_weight · KL, here divided by the pixel count) and the U-Net stage (the
/// diffusion loss of <see cref="LoraTrainer"/> on the frozen VAE's latents, optionally with the text encoder, caption
/// dropout for classifier-free guidance and an EMA), and the text stage (the text encoder alone, see
/// <see cref="CheckpointTrainingStage.Text"/>). Data order, noise and dropout are functions of (seed, step), the
/// state (weights, optimizer moments, EMA) is saved atomically, so <c>--resume</c> continues as an uninterrupted run.
/// The base model file is only read; the output is written whole (temporary file, then renamed).
/// </summary>
public static class CheckpointTrainer
{
    private const int ContextLength = 77;

    public static CheckpointTrainingResult Train(StableDiffusionCheckpoint checkpoint, CheckpointTrainingOptions options,
        IProgress<TrainingProgress>? progress = null, long? stopAfterStep = null)
    {
        Validate(options, checkpoint);
        string statePath = options.StatePath ?? Path.ChangeExtension(options.OutputPath, null) + ".train";
        int resolution = options.Resolution ?? NativeSize(options.DataPath) ?? checkpoint.Vae.Config.DownsampleFactor * 64;
        var dataset = TrainingDataset.Scan(options.DataPath, new AspectRatioBuckets(resolution, checkpoint.SizeMultiple));
        if (dataset.Images.Count == 0) throw new InvalidDataException($"{options.DataPath}: no readable training images");
        bool vaeStage = options.Stage == CheckpointTrainingStage.Vae, textStage = options.Stage == CheckpointTrainingStage.Text;

        // The trained tensors, named as in the checkpoint file.
        var trained = new List<(string Name, Parameter Parameter)>();
        var textTrained = new List<(string Name, Parameter Parameter)>();
        var architecture = checkpoint.Architecture;
        Parameter? imageCodes = null;
        if (vaeStage) trained.AddRange(Named(checkpoint.Vae, architecture.VaePrefix));
        else if (textStage)
        {
            var clip = checkpoint.ClipL ?? throw new ArgumentException("--stage text: only CLIP text encoders (SD1 layout) are trained here");
            trained.AddRange(Named(clip, architecture.TextEncoders[0].Prefix));
            // One code per training image: the "image tower" of the contrastive loss, kept in the state, never in the checkpoint.
            using var generator = new Generator((ulong)StepRandom.SeedFor(options.Seed, "image-codes", 0));
            using (var codes = randn([dataset.Images.Count, clip.Width], ScalarType.Float32, generator: generator))
                imageCodes = new Parameter(codes / Math.Sqrt(clip.Width)); // unit rows: Adam's steps then turn them at a useful rate
            trained.Add((TextStageCodesName, imageCodes));
        }
        else
        {
            trained.AddRange(Named(checkpoint.UNet, architecture.DenoiserPrefix));
            if (options.TrainTextEncoder)
                foreach (var slot in architecture.TextEncoders) textTrained.AddRange(Named(checkpoint.TextEncoder(slot), slot.Prefix));
        }
        var all = trained.Concat(textTrained).ToList();
        foreach (var (_, p) in all) p.requires_grad = true;
        if (options.FromScratch && options.ResumePath == null && options.Stage == CheckpointTrainingStage.Unet) ZeroInitOutputs(trained);

        var optimizers = new List<TrainingOptimizer> { CreateOptimizer(options, trained) };
        if (textTrained.Count > 0) optimizers.Add(CreateOptimizer(options, textTrained));
        var schedules = new[]
        {
            LearningRateSchedule.Create(options.Schedule, options.LearningRate, options.MaxSteps, options.WarmupSteps, options.ScheduleCycles),
            LearningRateSchedule.Create(options.Schedule, options.TextEncoderLearningRate ?? options.LearningRate, options.MaxSteps, options.WarmupSteps, options.ScheduleCycles),
        };
        var ema = options.EmaDecay > 0 ? all.Select(p => (p.Name, Value: new Parameter(p.Parameter.detach().clone(), requires_grad: false))).ToList() : null;
        string fingerprint = Fingerprint(options, checkpoint);
        long startStep = 0;
        if (options.ResumePath != null)
        {
            var saved = ema == null ? all : all.Concat(ema.Select(e => ("ema." + e.Name, e.Value))).ToList();
            startStep = TrainingState.Load(options.ResumePath, saved, optimizers, fingerprint);
        }

        // Inputs in memory: the data sets this trainer is for (a few thousand small images) fit easily.
        var index = dataset.Images.Select((image, i) => (image.Path, i)).ToDictionary(p => p.Path, p => p.i, StringComparer.Ordinal);
        using var pixels = LoadPixels(dataset);
        Tensor? latents = options.Stage == CheckpointTrainingStage.Unet ? EncodeLatents(checkpoint, pixels) : null;
        var captionLines = dataset.Images.Select(TrainingDataset.CaptionLines).ToList();
        using var noiseSchedule = new KohyaNoiseSchedule();
        bool v = checkpoint.Prediction == Prediction.V;

        checkpoint.UNet.RecordsGradients = options.Stage == CheckpointTrainingStage.Unet;
        var cursor = new EpochBatchCursor(dataset, options.Seed, options.BatchSize);
        long step;
        double lastLoss;
        try
        {
            (step, lastLoss) = new TrainingStepLoop
            {
                MaxSteps = options.MaxSteps,
                StartStep = startStep,
                StopAfterStep = stopAfterStep,
                GradientAccumulation = options.GradientAccumulation,
                SaveEvery = options.SaveEvery,
                SmoothingKeep = 0.98,
                SmoothingTake = 0.02,
                MicroLoss = micro =>
                {
                    var batch = cursor.At(micro);
                    var rows = tensor(batch.Select(i => (long)index[i.Path]).ToArray());
                    using var generator = new Generator((ulong)StepRandom.SeedFor(options.Seed, "noise", micro));
                    if (vaeStage)
                    {
                        var images = Crop(pixels.index_select(0, rows), options.Crop, new StepRandom(options.Seed, "crop", micro));
                        return VaeLoss(checkpoint, images, generator, options.KlWeight, (int)(images.shape[1] * images.shape[2] * images.shape[3]));
                    }
                    var random = new StepRandom(options.Seed, "caption", micro);
                    if (textStage)
                    {
                        // Every caption names its image: no dropout here (an empty caption names none).
                        var names = batch.Select(i => PickCaption(captionLines[index[i.Path]], options with { CaptionDropout = 0 }, random)).ToList();
                        return TextDiscriminationLoss(checkpoint, names, imageCodes!, rows, options.Temperature);
                    }
                    var captions = batch.Select(i => PickCaption(captionLines[index[i.Path]], options, random)).ToList();
                    return DiffusionStepLoss(checkpoint, latents!.index_select(0, rows), batch, captions, options, noiseSchedule, generator, v);
                },
                Clip = options.MaxGradNorm > 0 ? () => GradientClipping.ClipByNorm(all.Select(p => p.Parameter), options.MaxGradNorm) : null,
                Optimizers = optimizers.Select((o, i) => new OptimizerStep(o, schedules[i])).ToList(),
                AfterStep = ema == null ? null : s => UpdateEma(ema, all, options.EmaDecay, s),
                Save = s =>
                {
                    var saved = ema == null ? all : all.Concat(ema.Select(e => ("ema." + e.Name, e.Value))).ToList();
                    TrainingState.Save(statePath, s, saved, optimizers, fingerprint);
                },
            }.Run(progress);
        }
        finally
        {
            checkpoint.UNet.RecordsGradients = false;
            foreach (var (_, p) in all) p.requires_grad = false;
            foreach (var optimizer in optimizers) optimizer.Dispose();
            latents?.Dispose();
        }

        double? scaleFactor = null;
        if (step == options.MaxSteps)
        {
            if (ema != null) CopyEma(ema, all);
            Write(options.OutputPath, checkpoint, options.SavePrecision, step);
            ScratchCheckpoint.CopyCompanions(checkpoint.Path, options.OutputPath);
            if (vaeStage)
            {
                // LDM's scale_by_std: the U-Net sees latents of unit variance.
                scaleFactor = 1.0 / LatentStd(checkpoint, pixels);
                var config = LdmConfigFile.FindBeside(options.OutputPath);
                if (config != null) ScratchCheckpoint.WriteScaleFactor(config, config, scaleFactor.Value);
            }
        }
        ema?.ForEach(e => e.Value.Dispose());
        return new CheckpointTrainingResult(options.OutputPath, statePath, step, startStep, lastLoss, all.Sum(p => p.Parameter.numel()), scaleFactor, dataset.Problems);
    }

    /// <summary>The name of the text stage's per-image codes in the training state.</summary>
    private const string TextStageCodesName = "text_stage.image_codes";

    private static void Validate(CheckpointTrainingOptions o, StableDiffusionCheckpoint checkpoint)
    {
        if (o.Temperature <= 0) throw new ArgumentException("--temperature must be positive");
        if (o.MaxSteps < 1) throw new ArgumentException("--max-steps must be at least 1");
        if (o.BatchSize < 1 || o.GradientAccumulation < 1) throw new ArgumentException("--batch and --grad-accum must be at least 1");
        if (o.CaptionDropout is < 0 or > 1) throw new ArgumentException("--caption-dropout must be between 0 and 1");
        if (o.EmaDecay is < 0 or >= 1) throw new ArgumentException("--ema-decay must be in [0, 1)");
        if (o.Optimizer is not ("adamw" or "lion")) throw new ArgumentException($"--optimizer must be adamw or lion, not '{o.Optimizer}'");
        if (checkpoint.UNet.DType != ScalarType.Float32) throw new ArgumentException("checkpoint training keeps float32 master weights: load the model with --precision fp32");
        if (o.Crop is int crop && crop % checkpoint.Vae.Config.DownsampleFactor != 0)
            throw new ArgumentException($"--crop {crop} must be a multiple of the VAE's {checkpoint.Vae.Config.DownsampleFactor}x down-sampling");
        if (checkpoint.IsInpainting) throw new ArgumentException($"{checkpoint.Path}: inpainting U-Nets are not trained here");
    }

    private static IEnumerable<(string Name, Parameter Parameter)> Named(nn.Module module, string prefix) =>
        module.named_parameters().Select(p => (prefix + p.name, p.parameter));

    /// <summary>openaimodel's zero_module: the U-Net's out conv, every ResBlock's last conv and every proj_out start at zero.</summary>
    private static void ZeroInitOutputs(IEnumerable<(string Name, Parameter Parameter)> unet)
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in unet)
        {
            if (name.Contains(".out.2.", StringComparison.Ordinal) || name.Contains(".out_layers.3.", StringComparison.Ordinal)
                || name.Contains(".proj_out.", StringComparison.Ordinal))
                p.zero_();
        }
    }

    private static TrainingOptimizer CreateOptimizer(CheckpointTrainingOptions o, IReadOnlyList<(string, Parameter)> parameters) =>
        o.Optimizer == "lion" ? new LionOptimizer(parameters, weightDecay: o.WeightDecay) : new AdamWOptimizer(parameters, weightDecay: o.WeightDecay);

    private static string Fingerprint(CheckpointTrainingOptions o, StableDiffusionCheckpoint checkpoint) => JsonSerializer.Serialize(new
    {
        model = Path.GetFileName(checkpoint.Path),
        stage = o.Stage.ToString().ToLowerInvariant(),
        te = o.TrainTextEncoder,
        optimizer = o.Optimizer,
        batch = o.BatchSize,
        accum = o.GradientAccumulation,
        ema = o.EmaDecay,
        seed = o.Seed,
    });

    /// <summary>The side of a data set of square images all of one size (a rendered set such as the emoji); else null.</summary>
    private static int? NativeSize(string dataPath)
    {
        var sizes = TrainingDataset.Scan(dataPath, new AspectRatioBuckets(64, 8)).Images.Select(i => (i.Width, i.Height)).Distinct().ToList();
        return sizes.Count == 1 && sizes[0].Width == sizes[0].Height ? sizes[0].Width : null;
    }

    private static Tensor LoadPixels(TrainingDataset dataset)
    {
        var sizes = dataset.Images.Select(i => i.Bucket).Distinct().ToList();
        if (sizes.Count > 1) throw new InvalidDataException($"{dataset.Root}: checkpoint training takes images of one size; found buckets {string.Join(", ", sizes.Select(s => $"{s.Width}x{s.Height}"))}");
        var (w, h) = sizes[0];
        var rows = new List<Tensor>(dataset.Images.Count);
        try
        {
            foreach (var image in dataset.Images) rows.Add(TrainingImageLoader.Load(image.Path, w, h));
            return cat(rows.ToArray(), 0);
        }
        finally
        {
            foreach (var row in rows) row.Dispose();
        }
    }

    /// <summary>Scaled posterior means of every image (kohya caches the same; the mean keeps the cache deterministic).</summary>
    private static Tensor EncodeLatents(StableDiffusionCheckpoint checkpoint, Tensor pixels)
    {
        var chunks = new List<Tensor>();
        for (long i = 0; i < pixels.shape[0]; i += 64)
        {
            using var slice = pixels.narrow(0, i, Math.Min(64, pixels.shape[0] - i));
            chunks.Add(checkpoint.Vae.EncodeToLatents(slice));
        }
        var all = cat(chunks.ToArray(), 0);
        foreach (var c in chunks) c.Dispose();
        return all;
    }

    /// <summary>Std of the unscaled posterior means over the data set.</summary>
    private static double LatentStd(StableDiffusionCheckpoint checkpoint, Tensor pixels)
    {
        var means = new List<Tensor>();
        for (long i = 0; i < pixels.shape[0]; i += 64)
        {
            using var slice = pixels.narrow(0, i, Math.Min(64, pixels.shape[0] - i));
            var (mean, logvar) = checkpoint.Vae.Encode(slice);
            logvar.Dispose();
            means.Add(mean);
        }
        using var all = cat(means.ToArray(), 0);
        foreach (var m in means) m.Dispose();
        using var std = all.std();
        return std.item<float>();
    }

    /// <summary>A random <paramref name="side"/>² crop of each image (whole images when no crop is asked for).</summary>
    private static Tensor Crop(Tensor images, int? side, StepRandom random)
    {
        if (side is not int s || (s >= images.shape[2] && s >= images.shape[3])) return images;
        var rows = new Tensor[images.shape[0]];
        for (int b = 0; b < rows.Length; b++)
        {
            int top = random.Next((int)images.shape[2] - s + 1), left = random.Next((int)images.shape[3] - s + 1);
            rows[b] = images.narrow(0, b, 1).narrow(2, top, s).narrow(3, left, s);
        }
        return cat(rows, 0);
    }

    private static Tensor VaeLoss(StableDiffusionCheckpoint checkpoint, Tensor x, Generator generator, double klWeight, int pixelsPerImage)
    {
        var (mean, logvar) = checkpoint.Vae.EncodeWithGradients(x);
        var std = (logvar * 0.5).exp();
        var z = mean + std * randn(mean.shape, mean.dtype, generator: generator);
        var reconstruction = checkpoint.Vae.DecodeWithGradients(z);
        var l1 = (x - reconstruction).abs().mean();
        // DiagonalGaussianDistribution.kl(): 0.5 · Σ(μ² + σ² − 1 − log σ²) per image; LDM adds kl_weight times its batch mean to the summed L1.
        var kl = ((mean.square() + logvar.exp() - 1.0 - logvar).sum(new long[] { 1, 2, 3 }) * 0.5).mean();
        return l1 + kl * (klWeight / pixelsPerImage);
    }

    private static Tensor DiffusionStepLoss(StableDiffusionCheckpoint checkpoint, Tensor x0, IReadOnlyList<TrainingImage> images, IReadOnlyList<string> captions,
        CheckpointTrainingOptions options, KohyaNoiseSchedule schedule, Generator generator, bool v)
    {
        var noise = randn(x0.shape, ScalarType.Float32, generator: generator);
        if (options.NoiseOffset > 0)
            noise = DiffusionLoss.ApplyNoiseOffset(noise, randn([x0.shape[0], x0.shape[1], 1, 1], ScalarType.Float32, generator: generator), options.NoiseOffset);
        var t = randint(0, KohyaNoiseSchedule.TrainTimesteps, [x0.shape[0]], ScalarType.Int64, generator: generator);
        Tensor context;
        Tensor? pooled;
        using (var ids = tensor(CaptionIds(checkpoint, captions), [captions.Count, ContextLength]))
        using (options.TrainTextEncoder ? null : no_grad())
            (context, pooled) = TrainingConditioning.Encode(checkpoint, ids, clipSkip: 1);
        // Images are not flipped here (emoji, flags and arrows have a direction); SDXL's size conditioning is kohya's.
        var vector = TrainingConditioning.Vector(checkpoint, pooled, images, new bool[images.Count]);
        var prediction = checkpoint.UNet.Forward(schedule.AddNoise(x0, noise, t), t, context, vector);
        var target = DiffusionLoss.Target(schedule, x0, noise, t, v);
        var terms = DiffusionLoss.Compute(prediction, target, t, schedule, options.MinSnrGamma, v);
        return terms.Loss;
    }

    /// <summary>
    /// Cross-entropy of each caption against all image codes (cosine similarity / temperature): CLIP's loss in the
    /// caption-to-image direction, with one logit per image of the data set instead of per image of the batch (the
    /// data sets here have a few thousand images). The caption side is the mean of the context over the caption's own
    /// positions (its tokens and the EOS after them, not BOS, which sees only itself, nor the padding, where a fresh
    /// encoder's attention dilutes the caption among identical EOS tokens), so what the U-Net's cross-attention
    /// reads at those positions names the image.
    /// </summary>
    internal static Tensor TextDiscriminationLoss(StableDiffusionCheckpoint checkpoint, IReadOnlyList<string> captions, Tensor imageCodes,
        Tensor rows, double temperature)
    {
        var ids = CaptionIds(checkpoint, captions);
        var weights = new float[ids.Length];
        long eos = checkpoint.Tokenizer.EosId;
        for (int b = 0; b < captions.Count; b++)
        {
            int end = 1;
            while (end < ContextLength - 1 && ids[b * ContextLength + end] != eos) end++;
            for (int p = 1; p <= end; p++) weights[b * ContextLength + p] = 1f / end;
        }
        var context = EncodeIds(checkpoint, ids, captions.Count, withGradients: true);
        var pooled = (context * tensor(weights, [captions.Count, ContextLength, 1])).sum([1]);
        var logits = nn.functional.normalize(pooled, dim: 1).matmul(nn.functional.normalize(imageCodes, dim: 1).t()) / temperature;
        return nn.functional.cross_entropy(logits, rows);
    }

    private static long[] CaptionIds(StableDiffusionCheckpoint checkpoint, IReadOnlyList<string> captions)
    {
        var ids = new long[captions.Count * ContextLength];
        for (int b = 0; b < captions.Count; b++)
            CaptionTokenIds.ForCaption(checkpoint, captions[b]).CopyTo(ids.AsSpan(b * ContextLength, ContextLength));
        return ids;
    }

    private static Tensor EncodeIds(StableDiffusionCheckpoint checkpoint, long[] ids, int rows, bool withGradients)
    {
        var clip = checkpoint.ClipL ?? throw new ArgumentException("checkpoint training conditions on a CLIP text encoder (SD1 layout)");
        using var noGrad = withGradients ? null : no_grad();
        using var hidden = clip.Encode(tensor(ids, [rows, ContextLength]));
        return clip.FinalLayerNorm(hidden.FromEnd(1));
    }

    private static string PickCaption(IReadOnlyList<string> lines, CheckpointTrainingOptions options, StepRandom random)
    {
        // Both draws are made every time, so the sequence does not depend on the outcome.
        bool dropped = random.NextDouble() < options.CaptionDropout;
        int line = random.Next(lines.Count);
        if (dropped) return "";
        return options.RandomCaptionLine ? lines[line] : lines[0];
    }

    /// <summary>LDM's LitEma: decay warms up as (1 + n) / (10 + n) so early weights are not averaged in for long.</summary>
    private static void UpdateEma(List<(string Name, Parameter Value)> ema, List<(string Name, Parameter Parameter)> live, double decay, long step)
    {
        double d = Math.Min(decay, (1.0 + step) / (10.0 + step));
        using var noGrad = no_grad();
        // Scalars held in locals: a temporary one can be freed while the native call reads it (see TrainingOptimizer.Arg).
        using var keep = d.ToScalar();
        using var take = (1 - d).ToScalar();
        for (int i = 0; i < ema.Count; i++) ema[i].Value.mul_(keep).add_(live[i].Parameter, take);
    }

    private static void CopyEma(List<(string Name, Parameter Value)> ema, List<(string Name, Parameter Parameter)> live)
    {
        using var noGrad = no_grad();
        for (int i = 0; i < ema.Count; i++) live[i].Parameter.copy_(ema[i].Value);
    }

    /// <summary>
    /// The whole checkpoint in its family's single-file layout: U-Net, VAE and text encoders as loaded (the trained parts
    /// updated), CLIP's position_ids, and for the CompVis families (SD1, SD2) the DDPM buffers of SD's schedule.
    /// </summary>
    public static void Write(string path, StableDiffusionCheckpoint checkpoint, TensorDType precision, long step)
    {
        var architecture = checkpoint.Architecture;
        var tensors = new List<TensorToWrite>();
        void Add(nn.Module module, string prefix)
        {
            foreach (var (name, value) in module.state_dict())
                tensors.Add(LoraTrainingNetwork.FloatTensor(prefix + name, value, precision));
        }
        Add(checkpoint.UNet, architecture.DenoiserPrefix);
        Add(checkpoint.Vae, architecture.VaePrefix);
        foreach (var slot in architecture.TextEncoders)
        {
            var encoder = checkpoint.TextEncoder(slot);
            Add(encoder, slot.Prefix);
            if (encoder is not ClipTextModel clip) continue;
            int positions = clip.Positions;
            tensors.Add(new TensorToWrite(slot.Prefix + ClipTextModel.PositionIdsKey, TensorDType.I64, [1, positions],
                s => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Enumerable.Range(0, positions).Select(i => (long)i).ToArray().AsSpan()))));
        }
        if (checkpoint.Family != BaseFamily.SDXL) // sgm's SDXL files carry no DDPM buffers
        {
            foreach (var (name, values) in RandomModelSchedule.Buffers())
                tensors.Add(new TensorToWrite(name, TensorDType.F32, [values.Length], s => s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()))));
        }
        var metadata = new Dictionary<string, string>
        {
            ["sharpdiffusion.trained_steps"] = step.ToString(CultureInfo.InvariantCulture),
            ["modelspec.sai_model_spec"] = "1.0.0",
            ["modelspec.architecture"] = LoraFileOutput.ModelSpecArchitecture(checkpoint),
            ["modelspec.implementation"] = "https://github.com/Stability-AI/generative-models",
            ["modelspec.title"] = Path.GetFileNameWithoutExtension(path),
        };
        SafetensorsWriter.Write(path, tensors, metadata);
    }
}
