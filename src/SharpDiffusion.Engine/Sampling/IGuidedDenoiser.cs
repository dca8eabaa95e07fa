using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>What a sampler calls once per model evaluation: the final (e.g. CFG-combined) denoised latents at one sigma.</summary>
public interface IGuidedDenoiser
{
    Tensor Denoise(Tensor x, double sigma);
}
