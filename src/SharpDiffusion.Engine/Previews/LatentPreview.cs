using SharpDiffusion.Engine.Models;
using SharpDiffusion.Architectures;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Previews;

/// <summary>How an intermediate latent becomes a preview image (A1111 "Live preview method").</summary>
public enum PreviewMethod
{
    /// <summary>"Approximate cheap": a fixed linear map of the 4 latent channels to RGB, at latent resolution.</summary>
    Cheap,

    /// <summary>"TAESD": the tiny autoencoder's decoder, at full resolution.</summary>
    Taesd,
}

/// <summary>A1111's live previews (<c>sd_samplers_common.samples_to_images_tensor</c>, <c>sd_vae_approx.cheap_approximation</c>).</summary>
public static class LatentPreview
{
    /// <summary>"Approximate cheap": [B, 4, h, w] latents → [B, 3, h, w] image in A1111's [-1, 1] range (SD1 coefficients also for SD2).</summary>
    public static Tensor Cheap(Tensor latents, ModelArchitecture architecture)
    {
        if (latents.shape.Length != 4 || latents.shape[1] != 4) throw new ArgumentException($"cheap previews need [B, 4, h, w] latents, got [{string.Join(", ", latents.shape)}]");
        var table = architecture.LatentRgbFactors ?? throw new ArgumentException($"{architecture.DisplayName} has no cheap preview factors");
        using var scope = NewDisposeScope();
        var coefficients = tensor(table).to(latents.device);
        return einsum("blxy,lr->brxy", latents.to(ScalarType.Float32), coefficients).MoveToOuterDisposeScope();
    }

    /// <summary>The preview of <paramref name="latents"/> as A1111's [-1, 1] image tensor.</summary>
    public static Tensor ToImage(Tensor latents, PreviewMethod method, ModelArchitecture architecture, Taesd? decoder)
    {
        if (method == PreviewMethod.Cheap) return Cheap(latents, architecture);
        if (decoder is null || !decoder.IsDecoder) throw new ArgumentException("TAESD previews need a TAESD decoder (models/VAE-approx/taesd_decoder.pth, taesdxl_decoder.pth for SDXL)");
        using var scope = NewDisposeScope();
        return (decoder.Forward(latents) * 2 - 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A step callback that renders the denoised prediction (A1111's default live preview content) every
    /// <paramref name="every"/> steps and hands each image of the batch to <paramref name="sink"/> as 8-bit RGB, HWC.
    /// </summary>
    public static Action<Sampling.SamplerStep> EveryNSteps(int every, PreviewMethod method, ModelArchitecture architecture, Taesd? decoder,
        Action<PreviewImage> sink, Action<Sampling.SamplerStep>? inner = null)
    {
        if (every < 1) throw new ArgumentOutOfRangeException(nameof(every), every, "the preview interval must be at least 1 step");
        return step =>
        {
            inner?.Invoke(step);
            if ((step.Index + 1) % every != 0) return;
            using var scope = NewDisposeScope();
            var image = ToImage(step.Denoised, method, architecture, decoder);
            var bytes = ImageConversion.ToUInt8(image).permute(0, 2, 3, 1).contiguous();
            int height = (int)bytes.shape[1], width = (int)bytes.shape[2];
            for (int i = 0; i < bytes.shape[0]; i++) sink(new PreviewImage(step.Index, i, width, height, bytes[i].data<byte>().ToArray()));
        };
    }
}

/// <summary>One preview: after step <see cref="Step"/> (0-based), image <see cref="BatchIndex"/>, RGB bytes row by row.</summary>
public sealed record PreviewImage(int Step, int BatchIndex, int Width, int Height, byte[] Rgb);
