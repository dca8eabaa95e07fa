namespace SharpDiffusion.Engine.Training;

/// <summary>
/// What A1111-style template trainings (textual inversion, hypernetworks) share besides the model: data, output,
/// prompt template, rate (a value or an A1111 rate list), steps and batching, buckets, caption handling, checkpoints.
/// </summary>
public abstract record TemplateTrainingOptions
{
    public required string DataPath { get; init; }

    /// <summary>The file written at the end.</summary>
    public required string OutputPath { get; init; }

    /// <summary>A <see cref="PromptTemplates.BuiltIn"/> name or a template file.</summary>
    public string Template { get; init; } = PromptTemplates.DefaultName;

    /// <summary>A rate or an A1111 rate list ("0.005:100, 1e-3:1000, 1e-5").</summary>
    public abstract string LearningRate { get; init; }

    public string? StatePath { get; init; }
    public string? ResumePath { get; init; }
    public int MaxSteps { get; init; } = 100000;
    public int BatchSize { get; init; } = 1;
    public int GradientAccumulation { get; init; } = 1;
    public long Seed { get; init; } = 42;
    public int SaveEvery { get; init; }
    public int? Resolution { get; init; }
    public int BucketStep { get; init; } = 64;
    public bool FlipAugment { get; init; }
    public bool ShuffleTags { get; init; }
    public double TagDropout { get; init; }
    public int ClipSkip { get; init; } = 1;
}
