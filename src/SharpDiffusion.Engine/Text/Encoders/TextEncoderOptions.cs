namespace SharpDiffusion.Engine.Text.Encoders;

/// <summary>
/// Hyper-parameters of a text encoder that the weights cannot tell. Width, layer count, MLP width and positions are
/// read from the weights; heads default to width / 64 (real CLIP-L: 12 heads of 64, ViT-H: 16, bigG: 20).
/// </summary>
public sealed record TextEncoderOptions
{
    public int? Heads { get; init; }
    public TextActivation? Activation { get; init; }
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Weights and compute type (float32 unless the checkpoint is loaded in bf16, as A1111 runs CLIP in the model's type).</summary>
    public TorchSharp.torch.ScalarType DType { get; init; } = TorchSharp.torch.ScalarType.Float32;

    public int HeadsFor(long width) =>
        Heads ?? (width % 64 == 0 ? (int)(width / 64) : throw new ArgumentException($"width {width} is not a multiple of 64; give the head count"));
}
