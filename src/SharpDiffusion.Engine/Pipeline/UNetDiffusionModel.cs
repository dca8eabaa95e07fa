using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Sampling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>Plugs the U-Net into the samplers' model seam: cross-attention context and, for SDXL, the vector y.</summary>
public sealed class UNetDiffusionModel : Sampling.IDiffusionModel
{
    private readonly UNetModel _unet;

    public UNetDiffusionModel(UNetModel unet) => _unet = unet;

    public Tensor Predict(Tensor x, Tensor t, Conditioning cond) => _unet.Forward(x, t, cond.CrossAttention, cond.Vector);
}
