using SharpDiffusion.Engine.Pipeline;

namespace SharpDiffusion.Engine.Generation;

/// <summary>
/// What a caller (CLI, HTTP server, trainer's sample images) asks the <see cref="GenerationService"/> for: the model,
/// the A1111 models folder for extra networks, the image parameters (<see cref="GenerationRequest"/>: prompt,
/// negative, seed, steps, sampler, schedule, CFG, size, batch size, clip skip, init image and strength, RNG) and
/// A1111's batch count. Seeds run seed, seed+1, ... over all batch_size x batch_count images, as in A1111.
/// </summary>
public sealed record GenerationJob
{
    public required ModelChoice Model { get; init; }

    /// <summary>A1111 <c>models/</c> folder (<c>Lora/</c>, <c>LyCORIS/</c>, <c>embeddings/</c>, <c>hypernetworks/</c>); null: no extra networks.</summary>
    public string? ModelsDir { get; init; }

    public required GenerationRequest Parameters { get; init; }

    /// <summary>
    /// A1111's refiner checkpoint: takes over at <see cref="GenerationRequest.RefinerSwitchAt"/> (kept loaded beside the
    /// model between jobs that ask for it); null: none. Extra networks from the prompt are applied to the model only.
    /// </summary>
    public ModelChoice? Refiner { get; init; }

    /// <summary>A1111 <c>n_iter</c>: batches run one after another, each of <see cref="GenerationRequest.BatchSize"/> images.</summary>
    public int BatchCount { get; init; } = 1;
}
