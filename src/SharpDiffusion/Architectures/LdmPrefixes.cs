namespace SharpDiffusion.Architectures;

/// <summary>
/// The key prefixes every LDM / sgm single-file checkpoint shares (the canonical key space that every reader presents,
/// whatever the file's own layout). Family-specific prefixes (text encoders) live on each <see cref="ModelArchitecture"/>.
/// </summary>
public static class LdmPrefixes
{
    /// <summary>The denoising U-Net.</summary>
    public const string Unet = "model.diffusion_model.";

    /// <summary>The autoencoder (VAE).</summary>
    public const string Vae = "first_stage_model.";

    /// <summary>EMA copies of the U-Net (names without dots after the prefix, e.g. <c>model_ema.diffusion_modelinput_blocks00weight</c>).</summary>
    public const string Ema = "model_ema.";
}
