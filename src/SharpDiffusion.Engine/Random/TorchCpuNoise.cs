using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Random;

/// <summary>
/// A1111 "CPU" source: a torch CPU generator seeded with the seed, so the numbers are PyTorch's
/// <c>torch.randn(shape, generator=torch.Generator().manual_seed(seed))</c> bit for bit.
/// </summary>
public sealed class TorchCpuNoise : INoiseSource, IDisposable
{
    private readonly torch.Generator generator;

    public TorchCpuNoise(long seed)
    {
        Seed = seed;
        generator = new torch.Generator((ulong)seed);
    }

    public long Seed { get; }

    public Tensor Randn(ReadOnlySpan<long> shape) => randn(shape.ToArray(), ScalarType.Float32, CPU, generator: generator);

    public void Dispose() => generator.Dispose();
}
