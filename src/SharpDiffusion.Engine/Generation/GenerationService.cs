using System.Diagnostics;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Hashing;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Generation;

/// <summary>
/// The one owner of a loaded model and everything a job needs around it: loading and switching checkpoints (the
/// loaded one is reused while jobs ask for the same <see cref="ModelChoice"/> and its file is unchanged), prompt
/// parsing and A1111's extra networks (<see cref="ExtraNetworkSession"/>: LoRAs patched in place and restored bit for
/// bit, hypernetwork hooks, embeddings), the VAE choice, hashes through one <see cref="FileHasher"/>, the PNG
/// infotext (<see cref="GenerationInfotext"/>), per-step progress, interrupt/skip and cancellation. The CLI, an HTTP
/// server and a trainer call the same service.
/// <para>
/// <b>One job at a time.</b> LoRAs patch the loaded weights in place, so jobs on the service are serialised: every
/// public method waits for the job before it (in arrival order as <see cref="SemaphoreSlim"/> grants it, which is not
/// guaranteed FIFO: a server wanting strict order queues itself). Use one service per loaded model.
/// </para>
/// </summary>
public sealed class GenerationService : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private StableDiffusionCheckpoint? _model;
    private ModelChoice? _choice;
    private (long Size, DateTime Modified) _modelStamp;
    private ModelIdentity? _identity;
    private StableDiffusionCheckpoint? _refiner;
    private ModelChoice? _refinerChoice;
    private (long Size, DateTime Modified) _refinerStamp;
    private ModelIdentity? _refinerIdentity;
    private ExtraNetworkSession? _session;
    private string? _sessionModelsDir;
    private int _pending;
    private bool _disposed;

    /// <param name="hasher">Hashes for infotexts; default <see cref="FileHasher.Shared"/> (the user's hash cache).</param>
    public GenerationService(FileHasher? hasher = null) => Hasher = hasher ?? FileHasher.Shared;

    public FileHasher Hasher { get; }

    /// <summary>Jobs waiting or running (A1111's <c>job_count</c>).</summary>
    public int PendingJobs => Volatile.Read(ref _pending);

    /// <summary>The model choice currently loaded, or null.</summary>
    public ModelChoice? LoadedChoice => Volatile.Read(ref _choice);

    /// <summary>
    /// The request resolved once for everything downstream: the sampler's A1111 display name (aliases and legacy
    /// "... Karras" names accepted), the schedule it implies when none is given, a random first seed for -1 (as
    /// A1111), and an outpainting request (once it has its init image) as the inpainting job on the enlarged canvas.
    /// Throws <see cref="ArgumentException"/> for an unknown sampler. Idempotent; needs no model.
    /// </summary>
    public static GenerationRequest Normalize(GenerationRequest request)
    {
        if (request.Outpaint != null && request.InitImage != null) request = Inpainting.Outpainting.Expand(request);
        var (sampler, impliedSchedule) = SamplerRegistry.Resolve(request.Sampler, request.A1111SigmaQuirks);
        long seed = request.Seed == -1 ? System.Random.Shared.NextInt64(0, uint.MaxValue) : request.Seed;
        request = request with { Sampler = sampler.Name, Schedule = request.Schedule ?? impliedSchedule, Seed = seed };
        if (request.HiresSampler != null)
        {
            // A1111: hr_scheduler defaults to the first pass's; a legacy name ("DPM++ 2M Karras") implies its own.
            var (hiresSampler, hiresImplied) = SamplerRegistry.Resolve(request.HiresSampler, request.A1111SigmaQuirks);
            request = request with { HiresSampler = hiresSampler.Name, HiresSchedule = request.HiresSchedule ?? hiresImplied ?? request.Schedule };
        }
        return request;
    }

    /// <summary>
    /// A hires upscaler that is not a built-in mode names an upscaler model: a file path, or a name in the models
    /// folder's ESRGAN/, RealESRGAN/ or upscalers/ (A1111 lists them by file name). Unresolved names stay for
    /// ImageGenerator's validation to report.
    /// </summary>
    public static GenerationRequest ResolveHiresUpscaler(GenerationRequest request, string? modelsDir)
    {
        if (!request.HiresEnabled || request.HiresUpscalerPath != null
            || GenerationRequest.BuiltInHiresUpscalers.Contains(request.HiresUpscaler)) return request;
        if (File.Exists(request.HiresUpscaler))
            return request with { HiresUpscaler = Path.GetFileNameWithoutExtension(request.HiresUpscaler), HiresUpscalerPath = Path.GetFullPath(request.HiresUpscaler) };
        if (modelsDir != null && Upscaling.UpscalerFolder.Find(modelsDir, request.HiresUpscaler) is { } path)
            return request with { HiresUpscalerPath = path };
        return request;
    }

    /// <summary>
    /// Loads <paramref name="choice"/> unless it is already loaded (waits for the running job), and hashes the
    /// checkpoint and VAE for infotexts (through <see cref="Hasher"/>: its runner may show progress here).
    /// </summary>
    /// <exception cref="Formats.InvalidModelFileException">and the other load errors of <see cref="StableDiffusionCheckpoint.Load"/>, a missing vocabulary too.</exception>
    public LoadedModel LoadModel(ModelChoice choice, CancellationToken cancellation = default) =>
        Serialised(cancellation, () => Describe(choice, EnsureLoaded(choice, out var loadTime), _identity!, loadTime));

    /// <summary>Frees the loaded model (waits for the running job); the next job loads again.</summary>
    public void UnloadModel() => Serialised(default, () =>
    {
        Unload();
        return 0;
    });

    /// <summary>
    /// Runs <paramref name="action"/> on the loaded model as a job of its own (nothing else runs meanwhile): for a
    /// trainer's sample images or a check of the weights. The model must not be kept past the call, and the action
    /// must not call this service (the wait is not reentrant: it would never end).
    /// </summary>
    public T WithModel<T>(ModelChoice choice, Func<StableDiffusionCheckpoint, T> action, CancellationToken cancellation = default) =>
        Serialised(cancellation, () => action(EnsureLoaded(choice, out _)));

    /// <summary>
    /// Runs one job after the jobs before it: loads or reuses the model, applies the prompt's extra networks, samples
    /// <see cref="GenerationJob.BatchCount"/> batches (seeds continue from batch to batch), decodes, hashes and builds
    /// each image's infotext. Extra networks are removed again before the next job, also when this one fails.
    /// </summary>
    /// <param name="progress">Called on the job's thread after each sampler step's model evaluation (steps 1..N per iteration).</param>
    /// <param name="control">Interrupt (stop, keep what exists) and skip (end the current iteration); see <see cref="GenerationControl"/>.</param>
    /// <param name="cancellation">
    /// Cancels waiting or running: the job stops at the next step and throws <see cref="OperationCanceledException"/>
    /// (no images); the model stays loaded and unpatched.
    /// </param>
    /// <exception cref="ArgumentException">Bad parameters (sampler, size the model cannot take, steps, strength).</exception>
    public GenerationJobResult Generate(GenerationJob job, IProgress<GenerationProgress>? progress = null,
        GenerationControl? control = null, CancellationToken cancellation = default)
    {
        var queued = Stopwatch.StartNew();
        return Serialised(cancellation, () => Run(job, progress, control, cancellation, queued.Elapsed));
    }

    /// <summary>
    /// <see cref="Generate"/> for async callers: waits for the service without blocking a thread, then runs the job on
    /// a dedicated thread.
    /// </summary>
    public async Task<GenerationJobResult> GenerateAsync(GenerationJob job, IProgress<GenerationProgress>? progress = null,
        GenerationControl? control = null, CancellationToken cancellation = default)
    {
        var queued = Stopwatch.StartNew();
        Interlocked.Increment(ref _pending);
        try
        {
            await _gate.WaitAsync(cancellation).ConfigureAwait(false);
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                var waited = queued.Elapsed;
                return await Task.Factory.StartNew(() => Run(job, progress, control, cancellation, waited), cancellation,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _pending);
        }
    }

    private T Serialised<T>(CancellationToken cancellation, Func<T> action)
    {
        Interlocked.Increment(ref _pending);
        try
        {
            _gate.Wait(cancellation);
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                return action();
            }
            finally
            {
                _gate.Release();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _pending);
        }
    }

    private GenerationJobResult Run(GenerationJob job, IProgress<GenerationProgress>? progress, GenerationControl? control,
        CancellationToken cancellation, TimeSpan queued)
    {
        var clock = Stopwatch.StartNew();
        if (job.BatchCount < 1) throw new ArgumentException("batch count must be at least 1");
        var parameters = ResolveHiresUpscaler(Normalize(job.Parameters), job.ModelsDir);
        cancellation.ThrowIfCancellationRequested();
        var model = EnsureLoaded(job.Model, out var loadTime);
        var refiner = job.Refiner == null ? null : EnsureRefiner(job.Refiner);
        var session = EnsureSession(model, job.ModelsDir);
        var sampling = Stopwatch.StartNew(); // the ETA leaves the model load out

        var iterations = new List<ExtraNetworkJobResult>();
        bool interrupted = false;
        try
        {
            for (int iteration = 0; iteration < job.BatchCount; iteration++)
            {
                control?.BeginIteration();
                cancellation.ThrowIfCancellationRequested();
                var request = parameters with { Seed = parameters.Seed + (long)iteration * parameters.BatchSize };
                int current = iteration;
                void OnStep(SamplerStep step)
                {
                    if (progress == null) return;
                    long done = (long)current * step.Total + step.Index + 1, all = (long)job.BatchCount * step.Total;
                    progress.Report(new GenerationProgress(current, job.BatchCount, step.Index + 1, step.Total, clock.Elapsed,
                        sampling.Elapsed * ((all - done) / (double)done)));
                }
                var result = session.Generate(request, OnStep, cancellation, control, refiner);
                iterations.Add(result);
                interrupted |= result.Result.Interrupted;
                if (control?.InterruptRequested == true) break;
            }

            var identity = _identity!;
            var controlFields = GenerationInfotext.ControlNetFields(parameters.Control,
                parameters.Control.Select(u => File.Exists(u.ModelPath) ? Hasher.TryGet(u.ModelPath)?.Sha256[..8] : null).ToList());
            var images = new List<GeneratedImage>();
            foreach (var iteration in iterations)
            {
                var generated = iteration.Result;
                var fields = iteration.InfotextFields.Concat(controlFields);
                if (generated.Refined) fields = fields.Concat(GenerationInfotext.RefinerFields(_refinerIdentity!, parameters.RefinerSwitchAt));
                for (int i = 0; i < generated.Images.Count; i++)
                {
                    var info = GenerationInfotext.Build(parameters, generated.Seeds[i], identity, fields);
                    images.Add(new GeneratedImage(generated.Images[i], generated.Width, generated.Height, generated.Seeds[i], info.Format()));
                }
            }
            Hasher.Save();
            var latents = iterations.Count == 1 ? iterations[0].Result.Latents.clone() : cat(iterations.Select(r => r.Result.Latents).ToList(), 0);
            return new GenerationJobResult(parameters, images, latents.DetachFromDisposeScope(), identity)
            {
                Warnings = iterations.SelectMany(r => r.Warnings).Distinct().ToList(),
                Details = iterations.SelectMany(r => r.Details).Distinct().ToList(),
                NotApplied = iterations.SelectMany(r => r.NotApplied).Distinct().ToList(),
                Loras = iterations[0].Loras,
                Interrupted = interrupted,
                Timings = new GenerationTimings(queued, loadTime, queued + clock.Elapsed),
            };
        }
        finally
        {
            foreach (var iteration in iterations) iteration.Dispose();
        }
    }

    /// <summary>Model name and short hashes for infotexts (sha256's first 10 digits; cached by the hasher).</summary>
    private ModelIdentity Identify(StableDiffusionCheckpoint model) => new(
        Path.GetFileNameWithoutExtension(model.Path),
        Hasher.TryGet(model.Path)?.Short,
        model.VaePath == null ? null : Path.GetFileName(model.VaePath),
        model.VaePath == null ? null : Hasher.TryGet(model.VaePath)?.Short);

    private StableDiffusionCheckpoint EnsureLoaded(ModelChoice choice, out TimeSpan? loadTime)
    {
        var stamp = Stamp(choice.CheckpointPath);
        if (_model != null && _choice!.SameAs(choice) && stamp == _modelStamp)
        {
            loadTime = null;
            return _model;
        }
        Unload();
        var model = LoadWithVocabulary(choice);
        _model = model;
        _modelStamp = stamp;
        // Hashed at load, not after a job: a caller's progress display for hashing must not nest in its sampling one.
        _identity = Identify(model);
        Hasher.Save();
        Volatile.Write(ref _choice, choice);
        loadTime = model.LoadTime;
        return model;
    }

    /// <summary>A checkpoint whose vocabulary is found too: a missing one fails the load, before any work.</summary>
    private static StableDiffusionCheckpoint LoadWithVocabulary(ModelChoice choice)
    {
        var model = StableDiffusionCheckpoint.Load(choice.CheckpointPath, choice.LoadOptions);
        try
        {
            _ = model.Tokenizer;
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The refiner, kept loaded beside the model while jobs ask for the same one (a second full model in memory, as
    /// A1111 with its checkpoint cache of 2). Loaded after the model: the larger load fails first.
    /// </summary>
    private StableDiffusionCheckpoint EnsureRefiner(ModelChoice choice)
    {
        var stamp = Stamp(choice.CheckpointPath);
        if (_refiner != null && _refinerChoice!.SameAs(choice) && stamp == _refinerStamp) return _refiner;
        _refiner?.Dispose();
        _refiner = null;
        var refiner = LoadWithVocabulary(choice);
        (_refiner, _refinerChoice, _refinerStamp) = (refiner, choice, stamp);
        _refinerIdentity = Identify(refiner);
        Hasher.Save();
        return refiner;
    }

    /// <summary>The extra-network session of the loaded model for this models folder (its embeddings are read once).</summary>
    private ExtraNetworkSession EnsureSession(StableDiffusionCheckpoint model, string? modelsDir)
    {
        string? folder = modelsDir == null ? null : Path.GetFullPath(modelsDir);
        if (_session != null && _sessionModelsDir == folder) return _session;
        _session?.Dispose();
        _session = null;
        if (folder != null && !Directory.Exists(folder)) throw new ArgumentException($"models folder {modelsDir}: no such folder");
        _session = new ExtraNetworkSession(model, folder == null ? null : new ModelsFolder(folder));
        _sessionModelsDir = folder;
        return _session;
    }

    /// <summary>The checkpoint's size and modification time: a file replaced on disk is loaded again (restoring LoRA-patched weights reads it).</summary>
    private static (long, DateTime) Stamp(string path)
    {
        var file = new FileInfo(path);
        return file.Exists ? (file.Length, file.LastWriteTimeUtc) : (0, Directory.GetLastWriteTimeUtc(path));
    }

    private static LoadedModel Describe(ModelChoice choice, StableDiffusionCheckpoint model, ModelIdentity identity, TimeSpan? loadTime) =>
        new(choice, model.Path, identity, model.Architecture, model.Prediction, model.PredictionSource, model.VaePath,
            loadTime ?? model.LoadTime, loadTime == null);

    private void Unload()
    {
        _session?.Dispose();
        _session = null;
        _sessionModelsDir = null;
        _model?.Dispose();
        _model = null;
        _identity = null;
        _refiner?.Dispose();
        _refiner = null;
        _refinerChoice = null;
        _refinerIdentity = null;
        Volatile.Write(ref _choice, null);
    }

    /// <summary>Waits for the running job, then frees the model.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _gate.Wait();
        try
        {
            _disposed = true;
            Unload();
        }
        finally
        {
            _gate.Release();
        }
    }
}
