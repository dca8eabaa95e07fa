using System.Globalization;
using System.Text.Json;
using SharpDiffusion.Engine.Embeddings;
using SharpDiffusion.Engine.Hypernetworks;
using SharpDiffusion.Engine.Pipeline;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>Everything a hypernetwork run needs besides the model (defaults are A1111's).</summary>
public sealed record HypernetworkTrainingOptions : TemplateTrainingOptions
{
    /// <summary>The stored name and the templates' <c>[name]</c>; default the output's file name.</summary>
    public string? Name { get; init; }

    public IReadOnlyList<double> LayerStructure { get; init; } = [1, 2, 1];
    public string ActivationFunc { get; init; } = "linear";
    public bool LayerNorm { get; init; }

    /// <summary>Dropout after each layer (A1111's dropout_structure); null: none.</summary>
    public IReadOnlyList<double>? DropoutStructure { get; init; }

    /// <summary>
    /// Module widths (A1111's enable_sizes: the context widths of the attention layers it applies to); null: A1111's
    /// default checkboxes with the model's own text width first (768, 320, 640, 1280 on SD1; 1024 on SD2, 2048 on SDXL).
    /// </summary>
    public IReadOnlyList<int>? Sizes { get; init; }

    public override string LearningRate { get; init; } = "0.00001";
}

/// <summary>What a finished (or stopped) hypernetwork run did.</summary>
public sealed record HypernetworkTrainingResult(string OutputPath, string StatePath, long Steps, long ResumedFrom, double FinalLoss, int Parameters, IReadOnlyList<string> DataProblems);

/// <summary>
/// A1111's <c>train_hypernetwork</c> (SD 1.x, 2.x and SDXL, conditioned by <see cref="TrainingConditioning"/>): a new hypernetwork (<c>Hypernetwork(...)</c> with "Normal"
/// initialisation — every weight N(0, 0.01), every bias 0, LayerNorms included — and no activation after the last
/// layer), trained in A1111's train mode (<c>x + module(x)</c> on the keys and values of every attention layer whose
/// context width has a module, dropout on) by CompVis <c>p_losses</c> on a frozen text encoder's conditioning, with
/// torch's AdamW defaults (weight decay 0.01, as A1111 passes none) at the A1111 rate list. Data, buckets, latent
/// cache, templates and the bit-identical resume are the embedding trainer's; dropout masks come from torch's
/// generator seeded with (seed, step). The file is A1111's .pt dict (<see cref="TorchSaveWriter"/>).
/// </summary>
public static class HypernetworkTrainer
{
    public static HypernetworkTrainingResult Train(StableDiffusionCheckpoint checkpoint, HypernetworkTrainingOptions options,
        IProgress<TrainingProgress>? progress = null, long? stopAfterStep = null)
    {
        if (options.MaxSteps < 1) throw new ArgumentException("--max-steps must be at least 1");
        if (options.BatchSize < 1 || options.GradientAccumulation < 1) throw new ArgumentException("--batch and --grad-accum must be at least 1");
        var sizes = options.Sizes ?? [checkpoint.UNet.Config.ContextDim, 320, 640, 1280];
        if (sizes.Count == 0 || sizes.Any(s => s < 1)) throw new ArgumentException("--sizes must list positive widths");
        var structure = new HypernetworkStructure
        {
            LayerStructure = options.LayerStructure,
            ActivationFunc = options.ActivationFunc,
            IsLayerNorm = options.LayerNorm,
            ActivateOutput = false, // A1111's Hypernetwork(activate_output=False) for new hypernetworks
            DropoutStructure = options.DropoutStructure ?? new double[options.LayerStructure.Count],
        };
        if (structure.Problem() is { } problem) throw new ArgumentException(problem);
        var templates = PromptTemplates.Load(options.Template);
        string name = options.Name ?? Path.GetFileNameWithoutExtension(options.OutputPath);

        string statePath = options.StatePath ?? Path.ChangeExtension(options.OutputPath, null) + ".train";
        int resolution = options.Resolution ?? checkpoint.Vae.Config.DownsampleFactor * 64;
        var dataset = TrainingDataset.Scan(options.DataPath, new AspectRatioBuckets(resolution, options.BucketStep));
        if (dataset.Images.Count == 0) throw new InvalidDataException($"{options.DataPath}: no readable training images");
        foreach (var image in dataset.Images)
        {
            if (image.Bucket.Width % checkpoint.SizeMultiple != 0 || image.Bucket.Height % checkpoint.SizeMultiple != 0)
                throw new InvalidDataException($"{image.Path}: bucket {image.Bucket.Width}x{image.Bucket.Height} is not a multiple of {checkpoint.SizeMultiple}, which this model needs; choose --resolution/--bucket-step accordingly");
        }

        using var hypernetwork = Hypernetwork.Create(name, structure, sizes);
        Initialise(hypernetwork, options.Seed);
        using var training = new HypernetworkTraining(checkpoint.UNet, hypernetwork);
        bool dropout = structure.DropoutStructure.Any(d => d > 0);
        foreach (int width in hypernetwork.Widths)
        {
            var (k, v) = hypernetwork.ForWidth(width)!.Value;
            if (dropout) { k.train(); v.train(); }
        }
        using var optimizer = new AdamWOptimizer(training.Parameters, weightDecay: 0.01); // torch.optim.AdamW's default
        var schedule = LearningRateSchedule.Create(options.LearningRate, 0, options.MaxSteps);
        string fingerprint = JsonSerializer.Serialize(new
        {
            model = Path.GetFileName(checkpoint.Path), name, layers = options.LayerStructure, act = options.ActivationFunc, ln = options.LayerNorm,
            dropout = structure.DropoutStructure, sizes, template = options.Template, batch = options.BatchSize,
            accum = options.GradientAccumulation, seed = options.Seed,
        });
        long startStep = options.ResumePath != null ? TrainingState.Load(options.ResumePath, training.Parameters, [optimizer], fingerprint) : 0;

        var latents = new LatentCache(Path.Combine(statePath, "latents"), checkpoint.Vae, checkpoint.VaePath ?? checkpoint.Path);
        using var conditioningCache = new FrozenTextCache(checkpoint, options.ClipSkip);
        var (step, lastLoss) = TemplateTrainingLoop.Run(options, dataset, latents, templates, name, optimizer, schedule, startStep,
            stopAfterStep, at => TrainingState.Save(statePath, at, training.Parameters, [optimizer], fingerprint), progress, micro =>
            {
                var encoded = micro.Prompts.Select(conditioningCache.Get).ToList();
                var context = cat(encoded.Select(e => e.Context).ToArray(), 0);
                var pooled = encoded[0].Pooled is null ? null : cat(encoded.Select(e => e.Pooled!).ToArray(), 0);
                var vector = TrainingConditioning.Vector(checkpoint, pooled, micro.Images, micro.Flips);
                // A1111 draws dropout masks from torch's global generator: seeded per micro-batch so resuming is exact.
                if (dropout) TorchSharp.torch.random.manual_seed(StepRandom.SeedFor(options.Seed, "dropout", micro.Index));
                return TextualInversionTraining.LdmLoss(checkpoint, micro.Latents, micro.Noise, micro.Timesteps, context, vector);
            });

        if (step == options.MaxSteps) Write(options.OutputPath, hypernetwork, structure, name, step, checkpoint.Path);
        return new HypernetworkTrainingResult(options.OutputPath, statePath, step, startStep, lastLoss, training.Parameters.Count, dataset.Problems);
    }

    /// <summary>A1111's "Normal" initialisation, drawn from a generator seeded with <paramref name="seed"/>: weights N(0, 0.01), biases 0.</summary>
    private static void Initialise(Hypernetwork hypernetwork, long seed)
    {
        using var generator = new Generator((ulong)StepRandom.SeedFor(seed, "hypernetwork-init", 0));
        using var _ = no_grad();
        foreach (int width in hypernetwork.Widths)
        {
            var (k, v) = hypernetwork.ForWidth(width)!.Value;
            foreach (var module in new[] { k, v })
            {
                foreach (var (parameterName, p) in module.named_parameters())
                {
                    if (parameterName.EndsWith(".weight", StringComparison.Ordinal))
                    {
                        using var values = randn(p.shape, ScalarType.Float32, generator: generator);
                        p.copy_(values.mul_(0.01));
                    }
                    else p.zero_();
                }
            }
        }
    }

    /// <summary>A1111's <c>Hypernetwork.save</c> dict: {width: (k state dict, v state dict), ..., step, name, layer_structure, ...}.</summary>
    private static void Write(string path, Hypernetwork hypernetwork, HypernetworkStructure structure, string name, long step, string checkpointPath)
    {
        var root = new TorchSaveWriter.Dict();
        foreach (int width in hypernetwork.Widths)
        {
            var (k, v) = hypernetwork.ForWidth(width)!.Value;
            root.Add(width, new TorchSaveWriter.Tuple(StateDict(k), StateDict(v)));
        }
        var dropout = structure.DropoutStructure.Take(structure.LayerStructure.Count).ToList();
        root.Add("step", step);
        root.Add("name", name);
        root.Add("layer_structure", structure.LayerStructure.Cast<object?>().ToList());
        root.Add("activation_func", structure.ActivationFunc ?? "linear");
        root.Add("is_layer_norm", structure.IsLayerNorm);
        root.Add("weight_initialization", "Normal");
        root.Add("sd_checkpoint", FileSha256.TryCompute(checkpointPath) is { } sha ? sha[..10] : null);
        root.Add("sd_checkpoint_name", Path.GetFileNameWithoutExtension(checkpointPath));
        root.Add("activate_output", structure.ActivateOutput);
        root.Add("use_dropout", dropout.Any(d => d > 0));
        root.Add("dropout_structure", dropout.Cast<object?>().ToList());
        root.Add("last_layer_dropout", dropout.Count >= 2 && dropout[^2] != 0);
        root.Add("optional_info", null);
        TorchSaveWriter.Write(path, root);
    }

    private static TorchSaveWriter.Dict StateDict(HypernetworkModule module)
    {
        var dict = new TorchSaveWriter.Dict();
        foreach (var (parameterName, p) in module.named_parameters())
        {
            using var cpu = p.detach().to(ScalarType.Float32).contiguous();
            dict.Add(parameterName, new TorchSaveWriter.FloatTensor(cpu.data<float>().ToArray(), cpu.shape));
        }
        return dict;
    }
}
