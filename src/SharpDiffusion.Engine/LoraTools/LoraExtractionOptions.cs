using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.LoraTools;

/// <summary>Settings of <see cref="LoraExtractor"/>; defaults are kohya's.</summary>
public sealed record LoraExtractionOptions
{
    /// <summary>Rank (kohya --dim) of linear and 1x1 layers; alpha = rank.</summary>
    public required int Rank { get; init; }

    /// <summary>Rank of 3x3 convolutions (kohya --conv_dim); null: no LoCon layers at all.</summary>
    public int? ConvRank { get; init; }

    /// <summary>
    /// Up and down values are clamped to ± this quantile of their (signed) values, as kohya does; 1 keeps every value
    /// (kohya would still clamp negatives beyond the largest positive value there, which no one asking for 1 wants).
    /// </summary>
    public double ClampQuantile { get; init; } = 0.99;

    /// <summary>The text encoder is extracted only when some weight differs by more than this.</summary>
    public double MinDiff { get; init; } = 0.01;

    public TensorDType OutputDType { get; init; } = TensorDType.F32;
}
