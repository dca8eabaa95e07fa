using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Random;

/// <summary>
/// A1111's per-image noise (ImageRNG): image i of a batch has its own source seeded with seed + i, each call draws
/// one per-image tensor from every source and stacks them, so an image does not change with the batch size.
/// </summary>
public sealed class BatchNoise : IDisposable
{
    private readonly INoiseSource[] sources;

    public BatchNoise(IEnumerable<INoiseSource> sources)
    {
        this.sources = sources.ToArray();
        if (this.sources.Length == 0) throw new ArgumentException("a batch needs at least one noise source", nameof(sources));
    }

    /// <summary>Sources of <paramref name="kind"/> for seeds <paramref name="seed"/>, seed+1, … (one per image).</summary>
    public static BatchNoise ForSeeds(NoiseSourceKind kind, long seed, int batchSize) =>
        new(Enumerable.Range(0, batchSize).Select(i => NoiseSources.Create(kind, seed + i)));

    public int BatchSize => sources.Length;

    public IReadOnlyList<INoiseSource> Sources => sources;

    /// <summary>Draws one tensor of <paramref name="imageShape"/> per image; the result is [batch, ..imageShape].</summary>
    public Tensor Next(ReadOnlySpan<long> imageShape)
    {
        if (sources.Length == 1)
        {
            using var single = sources[0].Randn(imageShape);
            return single.unsqueeze(0);
        }
        var parts = new Tensor[sources.Length];
        try
        {
            for (int i = 0; i < sources.Length; i++) parts[i] = sources[i].Randn(imageShape);
            return stack(parts);
        }
        finally
        {
            foreach (var p in parts) p?.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var s in sources) (s as IDisposable)?.Dispose();
    }
}
