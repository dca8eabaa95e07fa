using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Sampling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>
/// Plugs the U-Net into the samplers' model seam: cross-attention context, for SDXL the vector y, for inpainting models
/// the image conditioning concatenated after the (c_in-scaled) latents (LDM's hybrid <c>cat([x] + c_concat, 1)</c>).
/// </summary>
public sealed class UNetDiffusionModel : Sampling.IDiffusionModel
{
    private readonly UNetModel _unet;

    public UNetDiffusionModel(UNetModel unet) => _unet = unet;

    public Tensor Predict(Tensor x, Tensor t, Conditioning cond)
    {
        if (cond.ImageConditioning is null) return _unet.Forward(x, t, cond.CrossAttention, cond.Vector);
        using var input = cat(new[] { x, cond.ImageConditioning.to(x.dtype, x.device) }, 1);
        return _unet.Forward(input, t, cond.CrossAttention, cond.Vector);
    }
}
