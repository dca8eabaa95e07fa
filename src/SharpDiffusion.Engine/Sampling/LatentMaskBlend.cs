using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// Inpainting's latent mask: after every model evaluation the guided prediction is blended back to the original
/// latents outside the mask, <c>denoised·nmask + init_latent·mask</c> (A1111's CFGDenoiser, mask_before_denoising off).
/// <see cref="InitLatent"/> [B or 1, C, h, w]; <see cref="Mask"/> (1 = keep) and <see cref="NMask"/> (1 = repaint) [C, h, w].
/// </summary>
public sealed record LatentMaskBlend(Tensor InitLatent, Tensor Mask, Tensor NMask)
{
    public Tensor Apply(Tensor x)
    {
        using var scope = NewDisposeScope();
        var init = InitLatent.to(x.dtype, x.device);
        return x.mul(NMask.to(x.dtype, x.device)).add(init.mul(Mask.to(x.dtype, x.device))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Wraps the guided denoiser with the latent-mask blend. Samplers that evaluate the model row by row (timestep samplers,
/// LCM, CFG++) bypass <see cref="IGuidedDenoiser.Denoise"/>, so this deliberately offers no <see cref="IRowGuidance"/>:
/// they refuse it instead of silently skipping the blend.
/// </summary>
internal sealed class MaskedDenoiser(IGuidedDenoiser inner, LatentMaskBlend blend) : IGuidedDenoiser, IDisposable
{
    public Tensor Denoise(Tensor x, double sigma)
    {
        using var denoised = inner.Denoise(x, sigma);
        return blend.Apply(denoised);
    }

    public void Dispose() => (inner as IDisposable)?.Dispose();
}
