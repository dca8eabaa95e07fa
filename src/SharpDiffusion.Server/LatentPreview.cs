using SharpDiffusion.Architectures;

namespace SharpDiffusion.Server;

/// <summary>
/// A1111's "Approximate cheap" live preview: each latent pixel's channels times the family's 4x3 matrix (the registry's
/// <see cref="ModelArchitecture.LatentRgbFactors"/>, A1111's modules/sd_vae_approx.py cheap_approximation), then (x + 1) / 2 clamped to [0, 1]. One RGB pixel per latent
/// pixel: a 512x512 SD1 job previews at 64x64.
/// </summary>
public static class LatentPreview
{
    /// <param name="latent">One image's latents, [4, height, width] row-major.</param>
    /// <returns>RGB bytes, height x width x 3.</returns>
    public static byte[] ToRgb(ReadOnlySpan<float> latent, int width, int height, ModelArchitecture architecture)
    {
        int plane = width * height;
        if (latent.Length != 4 * plane) throw new ArgumentException($"latents hold {latent.Length} values, 4x{height}x{width} needs {4 * plane}", nameof(latent));
        var coefficients = architecture.LatentRgbFactors ?? throw new ArgumentException($"{architecture.DisplayName} has no cheap preview factors");
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
