namespace SharpDiffusion.Conversion;

/// <summary>Names of the diffusers folder components that hold the weights of a Stable Diffusion pipeline.</summary>
public static class DiffusersComponents
{
    public const string Unet = "unet";
    public const string Vae = "vae";
    public const string TextEncoder = "text_encoder";
    public const string TextEncoder2 = "text_encoder_2";
}
