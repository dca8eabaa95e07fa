using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Text.Encoders;

/// <summary>The MLP activation of a CLIP text transformer.</summary>
public enum TextActivation
{
    /// <summary><c>x · sigmoid(1.702 x)</c>: openai CLIP ViT-L/14 (SD1, SDXL CLIP-L).</summary>
    QuickGelu,

    /// <summary>Exact (erf) GELU: OpenCLIP ViT-H/14 and bigG (SD2, SDXL).</summary>
    Gelu,
}

internal static class TextActivationFunctions
{
    public static Tensor Apply(this TextActivation activation, Tensor x) => activation switch
    {
        TextActivation.QuickGelu => x * sigmoid(x * 1.702),
        _ => nn.functional.gelu(x),
    };
}
