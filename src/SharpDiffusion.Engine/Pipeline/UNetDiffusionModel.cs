using SharpDiffusion.Engine.ControlNet;
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
    private readonly ControlStack? _control;

    /// <param name="control">ControlNets whose residuals join the U-Net at every call (null: none).</param>
    public UNetDiffusionModel(UNetModel unet, ControlStack? control = null)
    {
        _unet = unet;
        _control = control;
    }

    public Tensor Predict(Tensor x, Tensor t, Conditioning cond)
    {
        // The ControlNet sees the latents alone (its encoder copy takes the latent channels).
        using var residuals = _control?.Residuals(x, t, cond.CrossAttention);
        if (cond.ImageConditioning is null) return _unet.Forward(x, t, cond.CrossAttention, cond.Vector, residuals?.Residuals);
        using var input = cat(new[] { x, cond.ImageConditioning.to(x.dtype, x.device) }, 1);
        return _unet.Forward(input, t, cond.CrossAttention, cond.Vector, residuals?.Residuals);
    }
}
