using System.Globalization;
using System.Text.Json;
using SharpDiffusion.Engine.Embeddings;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>Everything a textual-inversion run needs besides the model (defaults are A1111's Train tab).</summary>
public sealed record EmbeddingTrainingOptions : TemplateTrainingOptions
{
    /// <summary>The prompt word the vectors stand for in the templates (A1111 later names it by the file name).</summary>
    public required string Name { get; init; }

    public int Vectors { get; init; } = 1;

    /// <summary>Text whose token embeddings start the vectors; empty: zeros (A1111).</summary>
    public string InitText { get; init; } = "*";

    public override string LearningRate { get; init; } = "0.005";
}

/// <summary>What a finished (or stopped) embedding run did.</summary>
public sealed record EmbeddingTrainingResult(string OutputPath, string StatePath, long Steps, long ResumedFrom, double FinalLoss, IReadOnlyList<string> DataProblems);

/// <summary>
/// A1111's <c>train_embedding</c> (textual_inversion.py): the vectors start from the init text's token
/// embeddings (<c>vec[i] = embedded[i·len/n]</c>), every step fills a random template line with the embedding's name
/// and the image's caption, the name's tokens become the n trainable rows (<see cref="TextualInversionTraining"/>),
/// the loss is CompVis <c>p_losses</c> with the checkpoint's own buffers (v target on SD2-v), and AdamW without weight
/// decay steps the vectors at the A1111 schedule's rate. SD2 trains OpenCLIP's vectors; SDXL (which A1111's Train tab
/// does not offer) trains one set per encoder as kohya's sdxl_train_textual_inversion does, conditioned as inference
/// conditions (penultimate states, bigG pooled, kohya's size embeddings). Choices of ours, noted: data folders, buckets
/// and the latent cache are the LoRA trainer's (posterior mean, where A1111's "once" samples it), the caption fallback
/// is the concept folder's name, and every random draw is a function of (seed, step) so a resumed run is bit-identical.
/// </summary>
public static class EmbeddingTrainer
{
    private const int ContextLength = 77;

    public static EmbeddingTrainingResult Train(StableDiffusionCheckpoint checkpoint, EmbeddingTrainingOptions options,
        IProgress<TrainingProgress>? progress = null, long? stopAfterStep = null)
    {
        if (options.Vectors < 1 || options.Vectors > ContextLength - 2) throw new ArgumentException($"--vectors must be 1..{ContextLength - 2}");
        if (options.MaxSteps < 1) throw new ArgumentException("--max-steps must be at least 1");
        if (options.BatchSize < 1 || options.GradientAccumulation < 1) throw new ArgumentException("--batch and --grad-accum must be at least 1");
        if (string.IsNullOrWhiteSpace(options.Name)) throw new ArgumentException("--name must not be empty");
        var sets = VectorSets(checkpoint);
        if (sets.Count > 1 && options.OutputPath.EndsWith(".pt", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{options.OutputPath}: an SDXL embedding holds two vector sets (clip_l, clip_g); write it as .safetensors");
        var templates = PromptTemplates.Load(options.Template);
        var nameTokens = checkpoint.Tokenizer.Encode(options.Name);
        if (nameTokens.Count == 0) throw new ArgumentException($"--name '{options.Name}' has no tokens");

        string statePath = options.StatePath ?? Path.ChangeExtension(options.OutputPath, null) + ".train";
        int resolution = options.Resolution ?? checkpoint.Vae.Config.DownsampleFactor * 64;
        var dataset = TrainingDataset.Scan(options.DataPath, new AspectRatioBuckets(resolution, options.BucketStep));
        if (dataset.Images.Count == 0) throw new InvalidDataException($"{options.DataPath}: no readable training images");
        foreach (var image in dataset.Images)
        {
            if (image.Bucket.Width % checkpoint.SizeMultiple != 0 || image.Bucket.Height % checkpoint.SizeMultiple != 0)
                throw new InvalidDataException($"{image.Path}: bucket {image.Bucket.Width}x{image.Bucket.Height} is not a multiple of {checkpoint.SizeMultiple}, which this model needs; choose --resolution/--bucket-step accordingly");
        }

        var initTokens = checkpoint.Tokenizer.Encode(options.InitText);
        var parameters = new List<(string Key, Parameter Vectors)>();
        foreach (var set in sets)
        {
            using var initial = InitialVectors(set.EmbedTokens, initTokens, options.Vectors);
            parameters.Add((set.Key, new Parameter(initial.clone(), requires_grad: true)));
        }
        try
        {
            Parameter? VectorsOf(bool onClipL) => parameters.Where((_, i) => sets[i].OnClipL == onClipL).Select(p => p.Vectors).FirstOrDefault();
            var clipLVectors = VectorsOf(true);
            var openClipVectors = VectorsOf(false);
            using var optimizer = new AdamWOptimizer(parameters, weightDecay: 0.0); // A1111: AdamW(weight_decay=0.0)
            var schedule = LearningRateSchedule.Create(options.LearningRate, 0, options.MaxSteps);
            string fingerprint = JsonSerializer.Serialize(new
            {
                model = Path.GetFileName(checkpoint.Path), name = options.Name, vectors = options.Vectors, init = options.InitText,
                template = options.Template, batch = options.BatchSize, accum = options.GradientAccumulation, seed = options.Seed,
            });
            long startStep = options.ResumePath != null ? TrainingState.Load(options.ResumePath, parameters, [optimizer], fingerprint) : 0;

            var latents = new LatentCache(Path.Combine(statePath, "latents"), checkpoint.Vae, checkpoint.VaePath ?? checkpoint.Path);
            var (step, lastLoss) = TemplateTrainingLoop.Run(options, dataset, latents, templates, options.Name, optimizer, schedule, startStep,
                stopAfterStep, at => TrainingState.Save(statePath, at, parameters, [optimizer], fingerprint), progress, micro =>
                {
                    var (ids, offsets) = PromptIds(checkpoint, micro.Prompts, nameTokens, options.Vectors);
                    // A prompt without the name gives the vectors no gradient (libtorch would fail in backward).
                    if (offsets.All(o => o.Count == 0))
                        throw new InvalidDataException($"{options.Template}: the prompt \"{micro.Prompts[0]}\" holds no \"{options.Name}\" (use [name] in the template, or the word in the captions)");
                    var (context, pooled) = TrainingConditioning.Encode(checkpoint, ids, options.ClipSkip, new EmbeddingSplice(offsets, clipLVectors, openClipVectors));
                    var vector = TrainingConditioning.Vector(checkpoint, pooled, micro.Images, micro.Flips);
                    return TextualInversionTraining.LdmLoss(checkpoint, micro.Latents, micro.Noise, micro.Timesteps, context, vector);
                });

            if (step == options.MaxSteps) Write(options.OutputPath, parameters, options.Name, step, checkpoint.Path);
            return new EmbeddingTrainingResult(options.OutputPath, statePath, step, startStep, lastLoss, dataset.Problems);
        }
        finally
        {
            foreach (var (_, p) in parameters) p.Dispose();
        }
    }

    /// <summary>The trained vector sets and the encoders they belong to: one for SD1 (CLIP-L) and SD2 (OpenCLIP),
    /// <c>emb_params</c> as kohya names it; two for SDXL, <c>clip_l</c> and <c>clip_g</c> as kohya's sdxl_train_textual_inversion
    /// writes them (the layout A1111 and ComfyUI load).</summary>
    private static IReadOnlyList<(string Key, Func<Tensor, Tensor> EmbedTokens, bool OnClipL)> VectorSets(StableDiffusionCheckpoint checkpoint) =>
        (checkpoint.ClipL, checkpoint.OpenClip) switch
        {
            ({ } clip, null) => [("emb_params", clip.EmbedTokens, true)],
            (null, { } open) => [("emb_params", open.EmbedTokens, false)],
            ({ } clip, { } open) => [("clip_l", clip.EmbedTokens, true), ("clip_g", open.EmbedTokens, false)],
            _ => throw new ArgumentException($"{checkpoint.Path}: {checkpoint.Architecture.DisplayName} has no text encoder an embedding could be trained for"),
        };

    /// <summary>
    /// A1111's <c>create_embedding</c>: the init text's token embeddings (no BOS/EOS, cut to n tokens), row i of the
    /// result being row <c>i·len/n</c> (integer division) of them; zeros when the text has no tokens.
    /// </summary>
    public static Tensor InitialVectors(ClipTextModel clip, IReadOnlyList<int> initTokens, int count) => InitialVectors(clip.EmbedTokens, initTokens, count);

    /// <summary>The same from any encoder's token-embedding table.</summary>
    public static Tensor InitialVectors(Func<Tensor, Tensor> embedTokens, IReadOnlyList<int> initTokens, int count)
    {
        using var scope = NewDisposeScope();
        var taken = initTokens.Take(count).Select(i => (long)i).ToArray();
        if (taken.Length == 0)
        {
            using var probe = embedTokens(tensor(new long[] { 0 }, [1, 1]));
            return zeros([count, probe.shape[2]], ScalarType.Float32).MoveToOuterDisposeScope();
        }
        Tensor embedded;
        using (no_grad()) embedded = embedTokens(tensor(taken, [1, taken.Length]))[0].to(ScalarType.Float32);
        var rows = Enumerable.Range(0, count).Select(i => (long)(i * taken.Length / count)).ToArray();
        return embedded.index_select(0, tensor(rows)).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Token ids [B, 77] of the filled prompts, each occurrence of the name's tokens replaced by n placeholder slots
    /// (as A1111's prompt parser makes room for an embedding), and the slots' offsets (position after BOS). Prompts
    /// are cut to one 75-token chunk; an occurrence that would not fit is dropped.
    /// </summary>
    internal static (Tensor Ids, IReadOnlyList<IReadOnlyList<int>> Offsets) PromptIds(StableDiffusionCheckpoint checkpoint, IReadOnlyList<string> prompts,
        IReadOnlyList<int> nameTokens, int vectorCount)
    {
        long pad = CaptionTokenIds.PadId(checkpoint);
        var all = new long[prompts.Count * ContextLength];
        var offsets = new List<IReadOnlyList<int>>();
        for (int b = 0; b < prompts.Count; b++)
        {
            var tokens = checkpoint.Tokenizer.Encode(prompts[b]);
            var body = new List<long>();
            var rowOffsets = new List<int>();
            for (int i = 0; i < tokens.Count && body.Count < ContextLength - 2;)
            {
                bool isName = nameTokens.Count > 0 && i + nameTokens.Count <= tokens.Count && nameTokens.Select((n, k) => tokens[i + k] == n).All(x => x);
                if (isName)
                {
                    if (body.Count + vectorCount <= ContextLength - 2)
                    {
                        rowOffsets.Add(body.Count);
                        // Id 0 as A1111's prompt parser writes: overwritten by the vectors, and below the end token, so SDXL's
                        // bigG still pads after the real end and pools there.
                        body.AddRange(Enumerable.Repeat(0L, vectorCount));
                    }
                    i += nameTokens.Count;
                }
                else body.Add(tokens[i++]);
            }
            CaptionTokenIds.Fill(all.AsSpan(b * ContextLength, ContextLength), checkpoint.Tokenizer, body, pad);
            offsets.Add(rowOffsets);
        }
        return (tensor(all, [prompts.Count, ContextLength]), offsets);
    }

    /// <summary>
    /// <c>.pt</c>: A1111's <c>Embedding.save</c> dict (<c>string_to_token</c> {'*': 265}, <c>string_to_param</c>
    /// {'*': [n, W]}, <c>name</c>, <c>step</c>, <c>sd_checkpoint</c> = the base's 10-digit short hash,
    /// <c>sd_checkpoint_name</c>); otherwise <c>.safetensors</c> with kohya's key <c>emb_params</c>, which A1111 (any
    /// single tensor), ComfyUI and <see cref="TextualInversionEmbedding"/> load, the same fields in its metadata.
    /// </summary>
    private static void Write(string path, IReadOnlyList<(string Key, Parameter Vectors)> sets, string name, long step, string checkpointPath)
    {
        var vectors = sets[0].Vectors;
        string? shortHash = FileSha256.TryCompute(checkpointPath) is { } sha ? sha[..10] : null;
        string checkpointName = Path.GetFileNameWithoutExtension(checkpointPath);
        if (path.EndsWith(".pt", StringComparison.OrdinalIgnoreCase))
        {
            using var cpu = vectors.detach().to(ScalarType.Float32).contiguous();
            TorchSaveWriter.Write(path, new TorchSaveWriter.Dict
            {
                { "string_to_token", new TorchSaveWriter.Dict { { "*", 265 } } }, // A1111's placeholder token id
                { "string_to_param", new TorchSaveWriter.Dict { { "*", new TorchSaveWriter.FloatTensor(cpu.data<float>().ToArray(), cpu.shape) } } },
                { "name", name },
                { "step", step },
                { "sd_checkpoint", shortHash },
                { "sd_checkpoint_name", checkpointName },
            });
            return;
        }
        var metadata = new Dictionary<string, string>
        {
            ["name"] = name,
            ["step"] = step.ToString(CultureInfo.InvariantCulture),
            ["sd_checkpoint_name"] = checkpointName,
        };
        if (shortHash != null) metadata["sd_checkpoint"] = shortHash;
        SafetensorsWriter.Write(path, [.. sets.Select(set => LoraTrainingNetwork.FloatTensor(set.Key, set.Vectors, TensorDType.F32))], metadata);
    }
}
