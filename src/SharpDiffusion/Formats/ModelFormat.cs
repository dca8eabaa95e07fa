namespace SharpDiffusion.Formats;

/// <summary>The container a model was read from.</summary>
public enum ModelFormat
{
    Safetensors,
    /// <summary>torch.save zip format (.ckpt/.pt/.pth/.bin): archive/data.pkl + archive/data/N.</summary>
    TorchZip,
    /// <summary>torch.save legacy (non-zip) format: magic, protocol, sys info, pickle, storages.</summary>
    TorchLegacy,
    /// <summary>A diffusers folder (model_index.json with unet/, vae/, text_encoder/ ...) or one of its components.</summary>
    Diffusers,
    Gguf,
}

public static class ModelFormatExtensions
{
    public static string WireName(this ModelFormat format) => format switch
    {
        ModelFormat.Safetensors => "safetensors",
        ModelFormat.TorchZip => "torch-zip",
        ModelFormat.TorchLegacy => "torch-legacy",
        ModelFormat.Diffusers => "diffusers",
        ModelFormat.Gguf => "gguf",
        _ => format.ToString().ToLowerInvariant(),
    };
}
