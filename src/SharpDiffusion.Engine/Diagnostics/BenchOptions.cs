using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Diagnostics;

/// <summary>What <see cref="BenchRunner"/> measures: a random model of <see cref="Architecture"/> unless <see cref="ModelPath"/> is given.</summary>
public sealed record BenchOptions
{
    public RandomModelArchitecture Architecture { get; init; } = RandomModelArchitecture.Sd15;

    /// <summary>A checkpoint to load instead of a random one.</summary>
    public string? ModelPath { get; init; }

    public string? TokenizerPath { get; init; }

    /// <summary>Square image size in pixels.</summary>
    public int Size { get; init; } = 512;

    /// <summary>Guided U-Net steps (each one batch-2 call: uncond and cond).</summary>
    public int Steps { get; init; } = 2;

    /// <summary>Compute type of the U-Net and VAE: Float32 or BFloat16 (only used when the CPU has bf16 instructions).</summary>
    public ScalarType Precision { get; init; } = ScalarType.Float32;

    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Where the random model is written (then deleted); default the system temp folder.</summary>
    public string? TempFolder { get; init; }

    public long Seed { get; init; }

    /// <summary><c>--samplers</c>: only these samplers (A1111 names or aliases); null: every one.</summary>
    public IReadOnlyList<string>? SamplerNames { get; init; }
}
