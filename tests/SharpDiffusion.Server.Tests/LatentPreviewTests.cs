using SharpDiffusion.Architectures;
namespace SharpDiffusion.Server.Tests;

/// <summary>A1111's cheap approximation (modules/sd_vae_approx.py): RGB = (latent . coefficients + 1) / 2, clamped.</summary>
public class LatentPreviewTests
{
    [Fact]
    public void EachLatentChannelContributesA1111sCoefficients()
    {
        // Pixel 0: channel 0 = 1 -> SD1 row 0 (0.298, 0.207, 0.208); pixel 1: channel 3 = 1 -> (-0.184, -0.271, -0.473);
        // pixel 2: all channels 4 -> 4 x the column sums (green clamps to 255); pixel 3: zeros -> mid grey.
        float[] latent =
        [
            1, 0, 4, 0, // channel 0 of pixels 0..3
            0, 0, 4, 0,
            0, 0, 4, 0,
            0, 1, 4, 0,
        ];
        var rgb = LatentPreview.ToRgb(latent, 4, 1, ModelArchitectures.Sd1);
        static byte Expected(double v) => (byte)Math.Round(Math.Clamp((v + 1) / 2, 0, 1) * 255);
        Assert.Equal(new[] { Expected(0.298), Expected(0.207), Expected(0.208) }, rgb[0..3]);
        Assert.Equal(new[] { Expected(-0.184), Expected(-0.271), Expected(-0.473) }, rgb[3..6]);
        Assert.Equal(new[] { Expected(4 * (0.298 + 0.187 - 0.158 - 0.184)), (byte)255, Expected(4 * (0.208 + 0.173 + 0.264 - 0.473)) }, rgb[6..9]);
        Assert.Equal(new byte[] { 128, 128, 128 }, rgb[9..12]);

        var sdxl = LatentPreview.ToRgb([1, 0, 0, 0, 0, 0, 0, 0], 2, 1, ModelArchitectures.Sdxl);
        Assert.Equal(new[] { Expected(0.3448), Expected(0.4168), Expected(0.4395) }, sdxl[0..3]);
    }

    [Fact]
    public void AWrongLatentSizeIsRefused() =>
        Assert.Throws<ArgumentException>(() => LatentPreview.ToRgb(new float[12], 2, 2, ModelArchitectures.Sd1));
}
