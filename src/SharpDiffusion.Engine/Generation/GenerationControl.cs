namespace SharpDiffusion.Engine.Generation;

/// <summary>
/// A1111's Interrupt and Skip for one running job (a server's <c>/interrupt</c> and <c>/skip</c>). Both take effect at
/// the next sampler step report: the current step's denoised prediction becomes the image, so the caller gets what
/// exists instead of nothing. To abandon a job without images, cancel its <see cref="CancellationToken"/> instead.
/// Thread-safe: meant to be called from another thread than the one running the job.
/// </summary>
public sealed class GenerationControl
{
    private volatile bool _interrupted;
    private volatile bool _skipped;

    /// <summary>Stop sampling now and end the job with the images as they are (later batch iterations do not run).</summary>
    public void Interrupt() => _interrupted = true;

    /// <summary>Stop sampling the current batch iteration (keeping its images as they are) and go on with the next.</summary>
    public void Skip() => _skipped = true;

    public bool InterruptRequested => _interrupted;

    /// <summary>True while sampling should stop: an interrupt, or a skip of the current iteration.</summary>
    public bool StopRequested => _interrupted || _skipped;

    /// <summary>Called by the service when an iteration starts: a skip applies to one iteration only.</summary>
    internal void BeginIteration() => _skipped = false;
}
