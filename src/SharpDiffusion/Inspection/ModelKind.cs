namespace SharpDiffusion.Inspection;

/// <summary>What a model file is. Wire names: checkpoint, unet, vae, text_encoder, lora, embedding, hypernetwork, controlnet, upscaler, vae-approx, unknown.</summary>
public enum ModelKind
{
    Unknown,
    Checkpoint,
    Unet,
    Vae,
    TextEncoder,
    Lora,
    Embedding,
    Hypernetwork,
    ControlNet,
    Upscaler,

    /// <summary>A preview decoder/encoder such as TAESD (A1111's models/VAE-approx).</summary>
    VaeApprox,
}

/// <summary>
/// The base model family a file belongs to or works with: the key of the architecture registry
/// (<see cref="Architectures.ModelArchitectures"/>), where each family's names, prefixes and facts are described.
/// </summary>
public enum BaseFamily
{
    SD1,
    SD2,
    SDXL,
    SDXLRefiner,
    SD3,
    Flux,
}

public static class InspectionWireNames
{
    public static string WireName(this ModelKind kind) => kind switch
    {
        ModelKind.TextEncoder => "text_encoder",
        ModelKind.ControlNet => "controlnet",
        ModelKind.VaeApprox => "vae-approx",
        _ => kind.ToString().ToLowerInvariant(),
    };
}
