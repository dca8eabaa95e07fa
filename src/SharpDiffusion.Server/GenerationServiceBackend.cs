using SharpDiffusion.Architectures;
using SharpDiffusion.Engine.Embeddings;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;

namespace SharpDiffusion.Server;

/// <summary>
/// The server's one adapter to the engine: every job runs through the engine's <see cref="GenerationService"/> (the
/// owner of the loaded model, its extra networks, hashes and infotext), so an image made through the API is the one
/// <c>sharpdiffusion generate</c> makes with the same settings, PNG parameters included.
/// </summary>
public sealed class GenerationServiceBackend(ModelCatalog catalog, string? tokenizerPath) : IImageGenerationBackend, IDisposable
{
    private readonly GenerationService _service = new(catalog.Hasher);

    public async Task<ImageJobResult> GenerateAsync(ImageJob job, IProgress<ImageJobProgress> progress, JobControl control)
    {
        var choice = Choice(job.Checkpoint, job.VaePath);
        // The preview needs the architecture; loading here (serialised by the service) also fails early for a bad file.
        var architecture = (await Task.Run(() => _service.LoadModel(choice, control.Interrupted)).ConfigureAwait(false)).Architecture;

        var generationControl = new GenerationControl();
        ImageJobProgress? preview = null;
        generationControl.StepObserver = step => preview = Preview(step, architecture);
        using var onInterrupt = control.Interrupted.Register(generationControl.Interrupt);
        void OnSkip() => generationControl.Skip();
        control.Skipped += OnSkip;
        try
        {
            var generation = new GenerationJob
            {
                Model = choice,
                ModelsDir = catalog.Folder.Root,
                BatchCount = job.Iterations,
                Parameters = job.ToGenerationRequest(),
                Refiner = job.Refiner == null ? null : Choice(job.Refiner, null),
            };
            if (job.InitImage != null)
                generation = generation with { Parameters = await Task.Run(() => AttachInitImage(generation.Parameters, job.InitImage, job.Mask)).ConfigureAwait(false) };
            if (job.Control.Count > 0)
                generation = generation with { Parameters = generation.Parameters with { Control = await Task.Run(() => ControlUnits(job)).ConfigureAwait(false) } };
            var reporter = new StepReporter(p => progress.Report((preview ?? new ImageJobProgress(0, 0, 0, 0)) with
            {
                BatchIndex = p.Iteration, BatchCount = p.IterationCount, Step = p.Step, Steps = p.TotalSteps,
            }));
            using var result = await _service.GenerateAsync(generation, reporter, generationControl).ConfigureAwait(false);
            var images = result.Images.Select(i => new GeneratedImage(i.Rgb, i.Width, i.Height, i.Seed, i.Infotext)).ToList();
            return new ImageJobResult(images, result.Warnings, result.Interrupted || control.IsInterrupted);
        }
        finally
        {
            control.Skipped -= OnSkip;
        }
    }

    public async Task<EmbeddingListing> ListEmbeddingsAsync(CheckpointEntry checkpoint, CancellationToken cancellationToken)
    {
        var choice = _service.LoadedChoice is { } loaded && Path.GetFullPath(loaded.CheckpointPath) == checkpoint.FullPath
            ? loaded
            : Choice(checkpoint, null);
        return await Task.Run(() => _service.WithModel(choice, model =>
        {
            // The session reads the folder's embeddings as this model's text encoders see them (widths); nothing is patched.
            using var session = new ExtraNetworkSession(model, catalog.Folder);
            var db = session.Embeddings;
            if (db == null) return new EmbeddingListing([], []);
            static EmbeddingInfo Describe(string name, TextualInversionEmbedding e) =>
                new(name, e.Step, e.SdCheckpoint, e.SdCheckpointName, e.Widths.Count > 0 ? e.Widths[0] : 0, e.VectorCount);
            return new EmbeddingListing(
                db.Embeddings.Select(e => Describe(e.Key, e.Value)).ToList(),
                db.Skipped.Select(e => Describe(e.Key, e.Value)).ToList());
        }, cancellationToken), cancellationToken).ConfigureAwait(false);
    }

    public void Unload() => _service.UnloadModel();

    public void Dispose() => _service.Dispose();

    private ModelChoice Choice(CheckpointEntry checkpoint, string? vaePath) => new(checkpoint.FullPath, new CheckpointLoadOptions
    {
        ConfigPath = checkpoint.ConfigPath,
        TokenizerPath = tokenizerPath,
        VaePath = vaePath,
    });

    /// <summary>The first image's denoised prediction through A1111's cheap latent-to-RGB projection (4-channel latents only).</summary>
    private static ImageJobProgress? Preview(SamplerStep step, ModelArchitecture architecture)
    {
        if (step.Denoised.shape is not [_, 4, var h, var w] || architecture.LatentRgbFactors == null) return null;
        using var first = step.Denoised[0].to(TorchSharp.torch.ScalarType.Float32).cpu().contiguous();
        var rgb = LatentPreview.ToRgb(first.data<float>().ToArray(), (int)w, (int)h, architecture);
        return new ImageJobProgress(0, 0, 0, 0) { PreviewRgb = rgb, PreviewWidth = (int)w, PreviewHeight = (int)h };
    }

    /// <summary>The init image and mask read as <c>generate --init-image --mask</c> reads its files (the engine's one reader).</summary>
    private static GenerationRequest AttachInitImage(GenerationRequest request, byte[] image, byte[]? mask) =>
        ThroughTempFile(image, "init", imagePath => mask == null
            ? InitImageLoader.Attach(request, imagePath, null, out _)
            : ThroughTempFile(mask, "mask", maskPath => InitImageLoader.Attach(request, imagePath, maskPath, out _)));

    /// <summary>Request bytes read by the engine's file reader (the one the command line uses) through a temporary file.</summary>
    private static T ThroughTempFile<T>(byte[] bytes, string what, Func<string, T> read)
    {
        var path = Path.Combine(Path.GetTempPath(), $"sdserve-{Guid.NewGuid():N}-{what}");
        try
        {
            File.WriteAllBytes(path, bytes);
            return read(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// The ControlNet units: each control image (on img2img without one, the init image, as the extension) read as
    /// <c>generate --control</c> reads its file, run through its preprocessor, kept at its own size for the engine to fit.
    /// </summary>
    private static List<SharpDiffusion.Engine.ControlNet.ControlUnit> ControlUnits(ImageJob job) => job.Control.Select(spec =>
    {
        var bytes = spec.Image ?? job.InitImage ?? throw new ArgumentException("a ControlNet unit has no control image");
        var image = ThroughTempFile(bytes, "control", path =>
        {
            var rgb = InitImageLoader.LoadRgb(path, out int width, out int height);
            return new SharpDiffusion.Engine.Upscaling.RgbImage(width, height, rgb);
        });
        return SharpDiffusion.Engine.ControlNet.ControlPreprocessors.Unit(spec.ModelPath, image, spec.Module, spec.ResizeMode, spec.Weight, spec.GuidanceStart, spec.GuidanceEnd, spec.ThresholdA, spec.ThresholdB);
    }).ToList();

    /// <summary>Reports on the job's thread (Progress&lt;T&gt; would post to the thread pool and lag behind).</summary>
    private sealed class StepReporter(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
