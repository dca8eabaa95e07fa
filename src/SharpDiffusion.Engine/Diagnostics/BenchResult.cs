namespace SharpDiffusion.Engine.Diagnostics;

/// <summary>The figures of one <see cref="BenchRunner"/> run (seconds unless named otherwise).</summary>
public sealed record BenchResult
{
    public required string Model { get; init; }

    /// <summary>Seconds to write the random model file (0 with a given model).</summary>
    public double WriteSeconds { get; init; }

    public double LoadSeconds { get; init; }
    public double TextEncodeSeconds { get; init; }

    /// <summary>Mean seconds per guided step, the first step left out when there is more than one (warm-up).</summary>
    public double UNetStepSeconds { get; init; }

    public required IReadOnlyList<double> StepSeconds { get; init; }
    public double VaeDecodeSeconds { get; init; }
    public double PeakRssMb { get; init; }

    /// <summary>Achieved U-Net throughput; null when the U-Net is not SD1.5-sized (the FLOP count is SD1.5's).</summary>
    public double? UNetGflops { get; init; }

    public required string Precision { get; init; }
    public int Threads { get; init; }
    public int Size { get; init; }
    public int Steps { get; init; }
    public required IReadOnlyList<string> CpuFlags { get; init; }

    /// <summary>"tokenizer" (prompts tokenized) or "fixed-ids" (no vocabulary found: fixed token ids).</summary>
    public required string TextInput { get; init; }

    public required IReadOnlyList<string> Notes { get; init; }
}

/// <summary>One sampler's run in <see cref="BenchRunner.RunSamplers"/>: its wall time and guided U-Net calls.</summary>
/// <param name="StoppedAtCallBudget">
/// The sampler picks its own steps (DPM adaptive: until its error estimate is met, which on random weights can take
/// hundreds of calls), so it was timed over a fixed number of model calls: only s/call is meaningful.
/// </param>
public sealed record SamplerBenchRow(string Sampler, int Steps, int ModelCalls, double Seconds, bool StoppedAtCallBudget = false)
{
    public double? SecondsPerStep => StoppedAtCallBudget ? null : Seconds / Steps;

    public double SecondsPerCall => ModelCalls == 0 ? 0 : Seconds / ModelCalls;

    public double? CallsPerStep => StoppedAtCallBudget ? null : ModelCalls / (double)Steps;
}

/// <summary>The figures of <see cref="BenchRunner.RunSamplers"/>: one row per sampler, in A1111's order.</summary>
public sealed record SamplerBenchResult
{
    public required string Model { get; init; }
    public int Size { get; init; }
    public int Steps { get; init; }
    public required string Precision { get; init; }
    public int Threads { get; init; }
    public required IReadOnlyList<SamplerBenchRow> Samplers { get; init; }
    public required IReadOnlyList<string> Notes { get; init; }
}
