namespace SharpDiffusion.Server.Tests;

/// <summary>
/// The real engine backend, made to hold a job at a sampling step until the test releases it (the progress callback
/// runs on the sampling thread, so waiting there pauses the job): what a client sees mid-job without timing guesses.
/// The prompts of started jobs are recorded in order.
/// </summary>
internal sealed class GatedBackend(ServerOptions options) : IImageGenerationBackend, IDisposable
{
    private readonly GenerationServiceBackend _engine = new(new ModelCatalog(options.ModelsDir, options.HashCacheFile == null ? null : options.HashCacheFile + ".backend"), options.TokenizerPath);
    private readonly SemaphoreSlim _release = new(0);
    private readonly SemaphoreSlim _reached = new(0);

    /// <summary>The step (1-based) at which jobs whose prompt contains <see cref="GatedPrompt"/> wait; 0: none wait.</summary>
    public int GateStep { get; set; }
    public string GatedPrompt { get; set; } = "";
    public System.Collections.Concurrent.ConcurrentQueue<string> Started { get; } = new();

    /// <summary>Waits until a gated job stands at <see cref="GateStep"/>.</summary>
    public async Task WaitAtGateAsync()
    {
        if (!await _reached.WaitAsync(TimeSpan.FromMinutes(2))) Assert.Fail($"no job reached step {GateStep}");
    }

    public void Release() => _release.Release();

    public Task<ImageJobResult> GenerateAsync(ImageJob job, IProgress<ImageJobProgress> progress, JobControl control)
    {
        Started.Enqueue(job.Prompt);
        bool gated = GateStep > 0 && job.Prompt.Contains(GatedPrompt, StringComparison.Ordinal);
        return _engine.GenerateAsync(job, new Gate(p =>
        {
            progress.Report(p);
            if (gated && p.Step == GateStep && p.BatchIndex == 0)
            {
                _reached.Release();
                _release.Wait(TimeSpan.FromMinutes(2));
            }
        }), control);
    }

    public Task<EmbeddingListing> ListEmbeddingsAsync(CheckpointEntry checkpoint, CancellationToken cancellationToken) =>
        _engine.ListEmbeddingsAsync(checkpoint, cancellationToken);

    public void Unload() => _engine.Unload();

    public void Dispose() => _engine.Dispose();

    private sealed class Gate(Action<ImageJobProgress> report) : IProgress<ImageJobProgress>
    {
        public void Report(ImageJobProgress value) => report(value);
    }
}
