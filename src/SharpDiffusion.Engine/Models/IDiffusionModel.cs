using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// The denoising network as samplers see it, whatever the family: raw model output (eps or v) for
/// latents <c>x</c> [B, C, H, W], timesteps [B] (float32, fractional allowed; int64 accepted),
/// cross-attention context [B, L, D] and, for SDXL, the pooled/size vector <c>y</c> [B, adm].
/// Inputs and output are float32 whatever the model's own dtype.
/// </summary>
public interface IDiffusionModel
{
    Tensor Forward(Tensor x, Tensor timesteps, Tensor context, Tensor? y = null);
}
