using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Pipeline;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Generation;

/// <summary>One image of a job: A1111's 8-bit RGB (row-major, 3 bytes a pixel), its seed and its PNG <c>parameters</c> text.</summary>
public sealed record GeneratedImage(byte[] Rgb, int Width, int Height, long Seed, string Infotext);

/// <summary>Where a job's time went: waiting for the service, loading the model (null: it was already loaded), and in all.</summary>
public sealed record GenerationTimings(TimeSpan Queued, TimeSpan? Load, TimeSpan Total);

/// <summary>
/// What a <see cref="GenerationService"/> job produced: the images (batch iterations in order), the final latents of
/// all of them [N, C, h, w] (unscaled), the request as run (sampler display name, seed chosen), what was not applied
/// and why, the <c>--verbose</c> lines, and the timings. Owns <see cref="Latents"/>.
/// </summary>
public sealed class GenerationJobResult : IDisposable
{
    internal GenerationJobResult(GenerationRequest parameters, IReadOnlyList<GeneratedImage> images, Tensor latents, ModelIdentity model)
    {
        Parameters = parameters;
        Images = images;
        Latents = latents;
        Model = model;
    }

    /// <summary>The request as run: normalised (<see cref="GenerationService.Normalize"/>), the first seed chosen.</summary>
    public GenerationRequest Parameters { get; }

    public IReadOnlyList<GeneratedImage> Images { get; }

    public Tensor Latents { get; }

    public ModelIdentity Model { get; }

    /// <summary>Networks skipped, unused tags, unreadable files: each once, in the order they first occurred.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>Matched/unmatched module counts, embeddings used, hypernetwork widths (the CLI's <c>--verbose</c>).</summary>
    public IReadOnlyList<string> Details { get; init; } = [];

    public IReadOnlyList<NotAppliedNetwork> NotApplied { get; init; } = [];

    /// <summary>The LoRAs of the prompt and how each was applied (of the first batch iteration; every iteration applies the same).</summary>
    public IReadOnlyList<LoraApplicationReport> Loras { get; init; } = [];

    /// <summary>Stopped early by <see cref="GenerationControl.Interrupt"/> (later iterations did not run) or a skip.</summary>
    public bool Interrupted { get; init; }

    public required GenerationTimings Timings { get; init; }

    public void Dispose() => Latents.Dispose();
}
