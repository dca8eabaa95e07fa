namespace SharpDiffusion.Conversion;

/// <summary>Which part of a checkpoint a network module patches (A1111 gives text encoder and U-Net separate strengths).</summary>
public enum ModelPart
{
    Unet,
    TextEncoder,

    /// <summary>SDXL's second (OpenCLIP bigG) text encoder.</summary>
    TextEncoder2,
}
