using SharpDiffusion.Engine.Sampling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Generation;

/// <summary>
/// The denoised prediction of a sampler step [B, C, h, w] as float32 on the CPU (row-major), for a live preview (a
/// server's <c>current_image</c>, through a per-family latent-to-RGB projection). <see cref="Step"/> is 1-based.
/// </summary>
public sealed record LatentPreview(int Step, long[] Shape, float[] Values);

/// <summary>
/// A1111's Interrupt and Skip for one running job (a server's <c>/interrupt</c> and <c>/skip</c>). Both take effect at
/// the next sampler step report: the current step's denoised prediction becomes the image, so the caller gets what
/// exists instead of nothing. To abandon a job without images, cancel its <see cref="CancellationToken"/> instead.
/// Thread-safe: meant to be called from another thread than the one running the job. It also carries the job's
/// latest latent preview when <see cref="PreviewEvery"/> asks for one.
/// </summary>
public sealed class GenerationControl
{
    private volatile bool _interrupted;
    private volatile bool _skipped;
    private volatile LatentPreview? _preview;

    /// <summary>Keep a copy of every N-th step's denoised latents in <see cref="Preview"/>; 0 (default): none.</summary>
    public int PreviewEvery { get; set; }

    /// <summary>
    /// Called on the job's thread with every sampler step's live tensors (e.g. the CLI's preview files); it must not
    /// keep them. Set before the job starts.
    /// </summary>
    public Action<SamplerStep>? StepObserver { get; set; }

    /// <summary>The latest preview (null until the first one); replaced, never mutated.</summary>
    public LatentPreview? Preview => _preview;

    /// <summary>Stop sampling now and end the job with the images as they are (later batch iterations do not run).</summary>
    public void Interrupt() => _interrupted = true;

    /// <summary>Stop sampling the current batch iteration (keeping its images as they are) and go on with the next.</summary>
    public void Skip() => _skipped = true;

    public bool InterruptRequested => _interrupted;

    /// <summary>True while sampling should stop: an interrupt, or a skip of the current iteration.</summary>
    public bool StopRequested => _interrupted || _skipped;

    /// <summary>Called by the service when an iteration starts: a skip applies to one iteration only.</summary>
    internal void BeginIteration() => _skipped = false;

    /// <summary>Called on the job's thread at every step report.</summary>
    internal void Observe(SamplerStep step)
    {
        StepObserver?.Invoke(step);
        int every = PreviewEvery;
        if (every <= 0 || (step.Index + 1) % every != 0) return;
        using var cpu = step.Denoised.to(ScalarType.Float32).cpu().contiguous();
        _preview = new LatentPreview(step.Index + 1, cpu.shape, cpu.data<float>().ToArray());
    }
}
