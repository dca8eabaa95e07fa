using SharpDiffusion.Formats;

namespace SharpDiffusion.Workshop;

/// <summary>What <see cref="CheckpointConverter"/> converts and how.</summary>
public sealed record ConvertOptions
{
    /// <summary>Any file <see cref="Conversion.CheckpointFiles"/> opens (.ckpt/.pt zip or legacy, .safetensors, a diffusers folder).</summary>
    public required string Input { get; init; }

    /// <summary>The .safetensors file to write, or the folder for <see cref="DiffusersExporter"/> (never the input).</summary>
    public required string Output { get; init; }

    /// <summary>F32, F16 or BF16 for every float tensor; null keeps each tensor's type. Integer tensors always keep theirs.</summary>
    public TensorDType? Precision { get; init; }

    /// <summary>Drop EMA copies (<c>model_ema.*</c>), <c>loss.*</c> and <c>optimizer*</c> tensors; DDPM buffers stay.</summary>
    public bool Prune { get; init; }

    /// <summary>
    /// The EMA weights become the model: each <c>model.*</c> tensor takes the data of its <c>model_ema.*</c> twin
    /// (see <see cref="CheckpointKeys.EmaKeyFor"/>), and all <c>model_ema.*</c> tensors are dropped.
    /// </summary>
    public bool EmaOnly { get; init; }
}
