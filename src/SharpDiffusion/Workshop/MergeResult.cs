namespace SharpDiffusion.Workshop;

/// <summary>What a merge wrote.</summary>
public sealed record MergeResult
{
    public required string Output { get; init; }

    /// <summary>Tensors in the output (A's key set).</summary>
    public int Tensors { get; init; }

    /// <summary>Tensors computed from A and B (and C).</summary>
    public int Merged { get; init; }

    /// <summary>Tensors copied from A: keys only A has, or that A1111 never merges (DDPM buffers, position ids, integers).</summary>
    public int KeptFromA { get; init; }

    /// <summary><c>first_stage_model.*</c> tensors replaced by the baked-in VAE.</summary>
    public int VaeReplaced { get; init; }

    /// <summary>A is an inpainting model (9-channel conv_in) merged with a 4-channel model.</summary>
    public bool IsInpainting { get; init; }

    /// <summary>A is an instruct-pix2pix model (8-channel conv_in) merged with a 4-channel model.</summary>
    public bool IsInstructPix2Pix { get; init; }

    public long OutputBytes { get; init; }

    public required IReadOnlyDictionary<string, string> Metadata { get; init; }
}
