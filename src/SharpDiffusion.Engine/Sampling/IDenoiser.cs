using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// A model seen as k-diffusion sees it: the denoised estimate D(x, sigma) of the un-scaled noisy latent
/// x = x0 + sigma·noise, for one sigma per batch row.
/// </summary>
public interface IDenoiser
{
    DiscreteSchedule Schedule { get; }

    /// <param name="x">noisy latents [B, C, H, W]</param>
    /// <param name="sigma">noise level per row, [B] (double values are rounded to float32 as k-diffusion's tensors are)</param>
    /// <param name="cond">B rows of conditioning</param>
    Tensor Denoise(Tensor x, IReadOnlyList<double> sigma, Conditioning cond);
}
