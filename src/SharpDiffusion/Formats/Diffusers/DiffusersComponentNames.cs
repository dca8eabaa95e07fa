namespace SharpDiffusion.Formats.Diffusers;

/// <summary>
/// The component name a diffusers class plays in a pipeline folder, used when a component folder is opened on
/// its own (e.g. a diffusers VAE folder: config.json says AutoencoderKL, so its tensors are named vae/...).
/// </summary>
public static class DiffusersComponentNames
{
    public static string? FromClassName(string? className) => className switch
    {
        null or "" => null,
        "CLIPTextModel" => "text_encoder",
        "CLIPTextModelWithProjection" => "text_encoder_2",
        "T5EncoderModel" => "text_encoder_3",
        "PriorTransformer" => "prior",
        _ when className.StartsWith("Autoencoder", StringComparison.Ordinal) || className.StartsWith("AsymmetricAutoencoder", StringComparison.Ordinal) => "vae",
        _ when className.Contains("ControlNet", StringComparison.Ordinal) => "controlnet",
        _ when className.StartsWith("UNet", StringComparison.Ordinal) => "unet",
        _ when className.Contains("Transformer", StringComparison.Ordinal) => "transformer",
        _ => null,
    };
}
