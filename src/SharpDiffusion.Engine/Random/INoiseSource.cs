using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Random;

/// <summary>A stream of standard-normal tensors for one image (one seed); each call continues the stream.</summary>
public interface INoiseSource
{
    /// <summary>The next N(0,1) float32 CPU tensor of <paramref name="shape"/>.</summary>
    Tensor Randn(ReadOnlySpan<long> shape);
}
