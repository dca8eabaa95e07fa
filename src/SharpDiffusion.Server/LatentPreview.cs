namespace SharpDiffusion.Server;

/// <summary>
/// A1111's "Approximate cheap" live preview: each latent pixel's channels times a 4x3 matrix per family
/// (modules/sd_vae_approx.py cheap_approximation), then (x + 1) / 2 clamped to [0, 1]. One RGB pixel per latent
/// pixel: a 512x512 SD1 job previews at 64x64.
/// </summary>
public static class LatentPreview
{
    private static readonly float[,] Sd1 =
    {
        { 0.298f, 0.207f, 0.208f },
        { 0.187f, 0.286f, 0.173f },
        { -0.158f, 0.189f, 0.264f },
        { -0.184f, -0.271f, -0.473f },
    };

    private static readonly float[,] Sdxl =
    {
        { 0.3448f, 0.4168f, 0.4395f },
        { -0.1953f, -0.0290f, 0.0250f },
        { 0.1074f, 0.0886f, -0.0163f },
        { -0.3730f, -0.2499f, -0.2088f },
    };

    /// <param name="latent">One image's latents, [4, height, width] row-major.</param>
    /// <returns>RGB bytes, height x width x 3.</returns>
    public static byte[] ToRgb(ReadOnlySpan<float> latent, int width, int height, bool sdxl)
    {
        int plane = width * height;
        if (latent.Length != 4 * plane) throw new ArgumentException($"latents hold {latent.Length} values, 4x{height}x{width} needs {4 * plane}", nameof(latent));
        var coefficients = sdxl ? Sdxl : Sd1;
        var rgb = new byte[plane * 3];
        for (int p = 0; p < plane; p++)
        {
            for (int c = 0; c < 3; c++)
            {
                float value = 0;
                for (int l = 0; l < 4; l++) value += latent[l * plane + p] * coefficients[l, c];
                rgb[p * 3 + c] = (byte)MathF.Round(Math.Clamp((value + 1f) / 2f, 0f, 1f) * 255f);
            }
        }
        return rgb;
    }
}
