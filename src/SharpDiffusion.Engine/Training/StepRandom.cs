namespace SharpDiffusion.Engine.Training;

/// <summary>
/// Counter-based random numbers (SplitMix64 over seed, purpose and index): every draw of a training step is a pure
/// function of (seed, step), so a resumed run draws exactly what an uninterrupted one would without saving RNG state.
/// </summary>
public sealed class StepRandom
{
    private ulong _state;

    public StepRandom(long seed, string purpose, long index)
    {
        ulong h = 1469598103934665603UL;
        foreach (char c in purpose) h = (h ^ c) * 1099511628211UL;
        _state = Mix((ulong)seed) ^ Mix(h) ^ Mix((ulong)index + 0x9E3779B97F4A7C15UL);
    }

    /// <summary>A 63-bit seed for torch's generator, derived the same way.</summary>
    public static long SeedFor(long seed, string purpose, long index) => (long)(new StepRandom(seed, purpose, index).NextUInt64() >> 1);

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, n).</summary>
    public int Next(int n) => (int)(NextDouble() * n);

    /// <summary>Fisher–Yates in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
