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
/// Wraps the guided denoiser with the latent-mask blend, at the place A1111's CFGDenoiser puts it:
/// <list type="bullet">
/// <item>the k-diffusion samplers (<see cref="IGuidedDenoiser.Denoise"/>): after every model evaluation, on the guided
/// prediction (<c>mask_before_denoising</c> off);</item>
/// <item>the timestep samplers (DDIM, DDIM CFG++, PLMS, UniPC: <see cref="IRowGuidance.Guide"/>): before it, on the
/// sampler's x_t, <c>x·nmask + init_latent·mask</c> with the clean init latent (CFGDenoiserTimesteps sets
/// <c>mask_before_denoising</c>); the sampler's own update still uses its un-blended x_t.</item>
/// </list>
/// LCM evaluates the model row by row but is a k-diffusion sampler in A1111 (blend after): it is refused instead.
/// </summary>
internal sealed class MaskedDenoiser(IGuidedDenoiser inner, LatentMaskBlend blend) : IGuidedDenoiser, IRowGuidance, IDisposable
{
    public Tensor Denoise(Tensor x, double sigma)
    {
        using var denoised = inner.Denoise(x, sigma);
        return blend.Apply(denoised);
    }

    public IDenoiser Denoiser => Rows.Denoiser;

    public (Tensor Guided, Tensor Uncond) Guide(Tensor x, Func<Tensor, Conditioning, Tensor> rows, double scaleFactor = 1.0)
    {
        using var blended = blend.Apply(x);
        return Rows.Guide(blended, rows, scaleFactor);
    }

    private IRowGuidance Rows => inner as IRowGuidance
        ?? throw new InvalidOperationException("the latent-mask blend before the model needs a row-guidance denoiser (CfgDenoiser or ConditionedDenoiser)");

    public void Dispose() => (inner as IDisposable)?.Dispose();
}
