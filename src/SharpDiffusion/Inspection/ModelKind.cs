namespace SharpDiffusion.Inspection;

/// <summary>What a model file is. Wire names: checkpoint, unet, vae, text_encoder, lora, embedding, hypernetwork, controlnet, upscaler, unknown.</summary>
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
}

/// <summary>The base model family a file belongs to or works with. Wire names: sd1, sd2, sdxl, sdxl_refiner, sd3, flux.</summary>
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
        _ => kind.ToString().ToLowerInvariant(),
    };

    public static string WireName(this BaseFamily family) => family switch
    {
        BaseFamily.SD1 => "sd1",
        BaseFamily.SD2 => "sd2",
        BaseFamily.SDXL => "sdxl",
        BaseFamily.SDXLRefiner => "sdxl_refiner",
        BaseFamily.SD3 => "sd3",
        BaseFamily.Flux => "flux",
        _ => family.ToString().ToLowerInvariant(),
    };
}
