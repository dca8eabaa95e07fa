using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// One kohya <c>LoRAModule</c> being trained: <c>lora_down</c> [r, in] (or [r, in, 1, 1] for a 1x1 convolution) and
/// <c>lora_up</c> [out, r] (or [out, r, 1, 1]) whose branch <c>up(down(x)) · multiplier · alpha/rank</c> is added to the
/// wrapped layer's output. Only these two tensors require gradients; the wrapped layer stays frozen.
/// </summary>
public sealed class TrainableLoraModule : IDisposable
{
    public TrainableLoraModule(string name, string layerPath, bool isTextEncoder, bool isConvolution, Parameter down, Parameter up, double alpha)
    {
        Name = name;
        LayerPath = layerPath;
        IsTextEncoder = isTextEncoder;
        IsConvolution = isConvolution;
        Down = down;
        Up = up;
        Alpha = alpha;
    }

    /// <summary>kohya name, e.g. <c>lora_unet_down_blocks_1_attentions_0_proj_in</c>.</summary>
    public string Name { get; }

    /// <summary>The wrapped layer's checkpoint path (without <c>.weight</c>).</summary>
    public string LayerPath { get; }

    public bool IsTextEncoder { get; }
    public bool IsConvolution { get; }
    public Parameter Down { get; }
    public Parameter Up { get; }
    public double Alpha { get; }
    public int Rank => (int)Down.shape[0];

    /// <summary>kohya's scale alpha / rank.</summary>
    public double Scale => Alpha / Rank;

    /// <summary>kohya's multiplier (1 while training).</summary>
    public double Multiplier { get; set; } = 1.0;

    /// <summary>
    /// The low-rank branch for the wrapped layer's input: <c>up(down(x)) · multiplier · scale</c>, computed in the LoRA's
    /// own precision (float32 master weights under a bf16 model; float64 for finite-difference checks).
    /// </summary>
    public Tensor Branch(Tensor input)
    {
        using var x = input.dtype == Down.dtype ? input.alias() : input.to(Down.dtype);
        using var low = IsConvolution ? F.conv2d(x, Down) : F.linear(x, Down);
        using var high = IsConvolution ? F.conv2d(low, Up) : F.linear(low, Up);
        return high.mul(Multiplier).mul_(Scale);
    }

    public void Dispose()
    {
        Down.Dispose();
        Up.Dispose();
    }
}
