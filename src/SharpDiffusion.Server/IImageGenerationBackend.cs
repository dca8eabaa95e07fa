using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;

namespace SharpDiffusion.Server;

/// <summary>
/// What the server needs from the engine: run one job on a checkpoint and say what the models folder's embeddings are
/// for it. Calls are serialised by <see cref="JobQueue"/> (one loaded model, weights patched in place by LoRAs).
/// </summary>
public interface IImageGenerationBackend
{
    /// <summary>Runs <paramref name="job"/>'s n_iter batches; a cancelled token ends the job after the current step
    /// (the images of finished batches are returned), a skip ends only the current batch.</summary>
    Task<ImageJobResult> GenerateAsync(ImageJob job, IProgress<ImageJobProgress> progress, JobControl control);

    /// <summary>The embeddings of the models folder as the checkpoint's text encoders see them (A1111's loaded/skipped).</summary>
    Task<EmbeddingListing> ListEmbeddingsAsync(CheckpointEntry checkpoint, CancellationToken cancellationToken);

    /// <summary>Frees the loaded model (A1111's unload-checkpoint); the next job loads it again.</summary>
    void Unload();
}

/// <summary>One request, already validated: A1111's fields in engine terms.</summary>
public sealed record ImageJob
{
    public required CheckpointEntry Checkpoint { get; init; }
    public string? VaePath { get; init; }
    public string Prompt { get; init; } = "";
    public string NegativePrompt { get; init; } = "";
    public int Steps { get; init; } = 50;
    /// <summary>A1111 display name ("Euler a"); the legacy " Karras" suffix is already split off into <see cref="Scheduler"/>.</summary>
    public string SamplerName { get; init; } = "Euler";
    /// <summary>"Automatic", "Karras" or "Exponential".</summary>
    public string Scheduler { get; init; } = "Automatic";
    public double CfgScale { get; init; } = 7.0;
    public long Seed { get; init; }
    public int Width { get; init; } = 512;
    public int Height { get; init; } = 512;
    public int BatchSize { get; init; } = 1;
    public int Iterations { get; init; } = 1;
    public int ClipSkip { get; init; } = 1;
    /// <summary>"cpu" (A1111's default RNG) or "nv".</summary>
    public string Rng { get; init; } = "cpu";
    /// <summary>img2img: the encoded starting image (PNG/JPEG/WebP bytes) and its strength.</summary>
    public byte[]? InitImage { get; init; }
    /// <summary>A1111's resize_mode 0-2 for the init image and mask.</summary>
    public Engine.Pipeline.InitResizeMode ResizeMode { get; init; }
    public double DenoisingStrength { get; init; } = 0.75;

    /// <summary>img2img inpainting: the encoded mask image (white = repaint) and A1111's mask settings (its API defaults).</summary>
    public byte[]? Mask { get; init; }
    public double MaskBlur { get; init; } = 4;
    /// <summary>A1111's mask_blur_y when it differs from <see cref="MaskBlur"/> (mask_blur_x); null: the same.</summary>
    public double? MaskBlurY { get; init; }
    public bool MaskInvert { get; init; }
    public SharpDiffusion.Engine.Pipeline.InpaintFill InpaintFill { get; init; } = SharpDiffusion.Engine.Pipeline.InpaintFill.Fill;
    public bool InpaintFullRes { get; init; } = true;
    public int InpaintFullResPadding { get; init; }

    /// <summary>txt2img hires. fix: the scale (null: no second pass), upscaler name and model file, steps (null: the first pass's), strength.</summary>
    public double? HiresScale { get; init; }
    /// <summary>A1111's hr_resize_x/y when either is set (they replace the scale); null: the scale.</summary>
    public (int Width, int Height)? HiresResize { get; init; }
    public string HiresUpscaler { get; init; } = "Latent";
    public string? HiresUpscalerPath { get; init; }
    public int? HiresSteps { get; init; }
    public double HiresDenoise { get; init; } = 0.75;
    /// <summary>A1111's hr_sampler_name (display name); null: the first pass's sampler.</summary>
    public string? HiresSampler { get; init; }
    /// <summary>A1111's hr_scheduler (label); null: the hires sampler's implied one, else the first pass's.</summary>
    public string? HiresScheduler { get; init; }
    /// <summary>A1111's hr_prompt / hr_negative_prompt when they differ from the prompts; null: the first pass's.</summary>
    public string? HiresPrompt { get; init; }
    public string? HiresNegativePrompt { get; init; }

    /// <summary>sd-webui-controlnet units (<c>alwayson_scripts.controlnet</c>); the backend decodes their images.</summary>
    public IReadOnlyList<ControlSpec> Control { get; init; } = [];

    /// <summary>A1111's refiner_checkpoint (a checkpoint of the models folder) and refiner_switch_at; null: none.</summary>
    public CheckpointEntry? Refiner { get; init; }
    public double RefinerSwitchAt { get; init; } = 0.8;

    /// <summary>The engine's request for this job, without the init image and mask (the backend decodes and attaches them).</summary>
    public GenerationRequest ToGenerationRequest() => new()
    {
        Prompt = Prompt,
        NegativePrompt = NegativePrompt,
        Steps = Steps,
        Sampler = SamplerName,
        Schedule = ScheduleTypes.Parse(Scheduler),
        CfgScale = CfgScale,
        Seed = Seed,
        Rng = NoiseSources.Parse(Rng),
        Width = Width,
        Height = Height,
        BatchSize = BatchSize,
        ClipSkip = ClipSkip,
        Strength = DenoisingStrength,
        MaskBlur = MaskBlur,
        MaskBlurY = MaskBlurY,
        MaskInvert = MaskInvert,
        InpaintFill = InpaintFill,
        InpaintFullRes = InpaintFullRes && Mask != null,
        InpaintFullResPadding = InpaintFullResPadding,
        HiresScale = HiresScale,
        HiresResize = HiresResize,
        HiresUpscaler = HiresUpscaler,
        HiresUpscalerPath = HiresUpscalerPath,
        HiresSteps = HiresSteps,
        HiresDenoise = HiresDenoise,
        ResizeMode = ResizeMode,
        HiresSampler = HiresSampler,
        HiresPrompt = HiresPrompt,
        HiresNegativePrompt = HiresNegativePrompt,
        HiresSchedule = HiresScheduler == null ? null : ScheduleTypes.Parse(HiresScheduler),
        RefinerSwitchAt = RefinerSwitchAt,
    };
}

/// <summary>One image: RGB bytes, its seed and its A1111 parameters text.</summary>
public sealed record GeneratedImage(byte[] Rgb, int Width, int Height, long Seed, string Infotext);

public sealed record ImageJobResult(IReadOnlyList<GeneratedImage> Images, IReadOnlyList<string> Warnings, bool Interrupted);

/// <summary>
/// Progress of a job: batch <see cref="BatchIndex"/> of <see cref="BatchCount"/>, sampling step <see cref="Step"/> of
/// <see cref="Steps"/>, and the step's preview when the backend makes one (RGB bytes, <see cref="LatentPreview"/>).
/// </summary>
public sealed record ImageJobProgress(int BatchIndex, int BatchCount, int Step, int Steps)
{
    public byte[]? PreviewRgb { get; init; }
    public int PreviewWidth { get; init; }
    public int PreviewHeight { get; init; }
}

/// <summary>Interrupt (end the job) and skip (end the current batch only), as A1111's buttons.</summary>
public sealed class JobControl
{
    private readonly CancellationTokenSource _interrupt = new();
    private CancellationTokenSource _batch = new();
    private readonly Lock _lock = new();

    public CancellationToken Interrupted => _interrupt.Token;
    public bool IsInterrupted => _interrupt.IsCancellationRequested;
    public bool SkipRequested { get; private set; }

    public void Interrupt() => _interrupt.Cancel();

    /// <summary>Raised by <see cref="Skip"/> (a backend that runs batches itself ends its current one).</summary>
    public event Action? Skipped;

    public void Skip()
    {
        lock (_lock)
        {
            SkipRequested = true;
            _batch.Cancel();
        }
        Skipped?.Invoke();
    }

    /// <summary>A token for the next batch: cancelled by an interrupt or by a skip during that batch.</summary>
    public CancellationToken BeginBatch()
    {
        lock (_lock)
        {
            _batch.Dispose();
            _batch = CancellationTokenSource.CreateLinkedTokenSource(_interrupt.Token);
            SkipRequested = false;
            return _batch.Token;
        }
    }
}

public sealed record EmbeddingInfo(string Name, long? Step, string? SdCheckpoint, string? SdCheckpointName, int Shape, int Vectors);

public sealed record EmbeddingListing(IReadOnlyList<EmbeddingInfo> Loaded, IReadOnlyList<EmbeddingInfo> Skipped);
