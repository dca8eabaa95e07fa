using SharpDiffusion.Formats;
using SharpDiffusion.Hashing;

namespace SharpDiffusion.Workshop;

/// <summary>What <see cref="ModelMerger"/> merges and where it writes.</summary>
public sealed record MergeOptions
{
    public required string ModelA { get; init; }
    public required string ModelB { get; init; }

    /// <summary>Required by <see cref="MergeMode.AddDifference"/>, unused otherwise.</summary>
    public string? ModelC { get; init; }

    public MergeMode Mode { get; init; } = MergeMode.WeightedSum;

    /// <summary>M in <c>(1 - M) A + M B</c> or <c>A + M (B - C)</c>; BASE when block weights are given with 25 values.</summary>
    public double Multiplier { get; init; }

    /// <summary>Per-block multipliers; when set they replace <see cref="Multiplier"/> for every key (BASE outside the U-Net blocks).</summary>
    public BlockWeights? BlockWeights { get; init; }

    /// <summary>A VAE whose weights replace the merged <c>first_stage_model.*</c> tensors.</summary>
    public string? Vae { get; init; }

    /// <summary>F32, F16 or BF16 for every float tensor; null keeps each tensor at A's type.</summary>
    public TensorDType? Precision { get; init; }

    public required string Output { get; init; }

    /// <summary>Hashes of the inputs for the recipe (A1111 records sha256 and the legacy hash); by default computed from the files.</summary>
    public Func<string, ModelHashes>? Hasher { get; init; }
}
