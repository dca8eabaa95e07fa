namespace SharpDiffusion.Workshop;

/// <summary>What <see cref="DiffusersExporter"/> wrote.</summary>
public sealed record DiffusersExportResult
{
    /// <summary>The diffusers folder written.</summary>
    public required string Output { get; init; }

    /// <summary>Sub-folders written, in order (unet, vae, text_encoder, scheduler, and tokenizer when a vocabulary was found).</summary>
    public required IReadOnlyList<string> Folders { get; init; }

    /// <summary>False when no CLIP vocabulary was found beside the input: the folder then has no tokenizer/ (nothing is downloaded).</summary>
    public bool TokenizerWritten { get; init; }

    /// <summary>Tensors written, all components together.</summary>
    public int Tensors { get; init; }

    /// <summary>
    /// Input tensors with no place in a diffusers folder, left out: DDPM schedule buffers (the scheduler computes
    /// them), the text encoder's position_ids buffer, EMA copies and other training leftovers.
    /// </summary>
    public int Dropped { get; init; }

    /// <summary>With EMA only: U-Net tensors whose data came from their EMA copy.</summary>
    public int FromEma { get; init; }

    /// <summary>Float tensors stored at a different precision than the input's.</summary>
    public int PrecisionChanged { get; init; }

    public long OutputBytes { get; init; }
}
