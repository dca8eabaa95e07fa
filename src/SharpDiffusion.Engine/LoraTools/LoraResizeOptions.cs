using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.LoraTools;

/// <summary>Settings of <see cref="LoraResizer"/> (kohya resize_lora.py "fixed rank" mode).</summary>
public sealed record LoraResizeOptions
{
    /// <summary>New rank of linear layers (kohya --new_rank).</summary>
    public required int Rank { get; init; }

    /// <summary>New rank of convolution layers (kohya --new_conv_rank); null: the same as <see cref="Rank"/>.</summary>
    public int? ConvRank { get; init; }

    public TensorDType OutputDType { get; init; } = TensorDType.F32;
}
