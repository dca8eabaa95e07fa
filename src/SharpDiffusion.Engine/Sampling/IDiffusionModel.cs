using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// The seam the U-Net plugs into: the raw network output (eps or v, depending on the model) for the scaled input
/// <paramref name="x"/> [B, C, H, W], timesteps <paramref name="t"/> (float32 [B], fractional for k-diffusion
/// samplers) and the conditioning (B rows).
/// </summary>
public interface IDiffusionModel
{
    Tensor Predict(Tensor x, Tensor t, Conditioning cond);
}
