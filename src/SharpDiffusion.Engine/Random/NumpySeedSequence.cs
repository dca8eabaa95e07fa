using System.Numerics;

namespace SharpDiffusion.Engine.Random;

/// <summary>
/// numpy's <c>SeedSequence</c> (numpy ≥ 1.17): hashes an entropy integer and a spawn key into a pool of 32-bit words
/// and derives state words from it. torchsde seeds every Brownian-tree node with it.
/// </summary>
public sealed class NumpySeedSequence
{
    private const uint InitA = 0x43b0d7e5, MultA = 0x931e8875, InitB = 0x8b51f9dd, MultB = 0x58f38ded;
    private const uint MixMultL = 0xca01f9dd, MixMultR = 0x4973f715;
    private readonly uint[] pool;

    public NumpySeedSequence(BigInteger entropy, IReadOnlyList<BigInteger>? spawnKey = null, int poolSize = 24)
    {
        if (entropy.Sign < 0) throw new ArgumentOutOfRangeException(nameof(entropy), entropy, "entropy must not be negative");
        if (poolSize < 1) throw new ArgumentOutOfRangeException(nameof(poolSize), poolSize, "pool size must be positive");
        var words = new List<uint>(Words(entropy));
        if (spawnKey is { Count: > 0 })
        {
            while (words.Count < poolSize) words.Add(0);
            foreach (var key in spawnKey) words.AddRange(Words(key));
        }
        pool = MixEntropy(words, poolSize);
    }

    public IReadOnlyList<uint> Pool => pool;

    /// <summary>numpy <c>generate_state(n, dtype=uint32)</c>.</summary>
    public uint[] GenerateState(int count)
    {
        var state = new uint[count];
        uint hash = InitB;
        for (int i = 0; i < count; i++)
        {
            uint value = pool[i % pool.Length] ^ hash;
            hash *= MultB;
            value *= hash;
            value ^= value >> 16;
            state[i] = value;
        }
        return state;
    }

    /// <summary>Base-2³² digits of <paramref name="n"/>, least significant first; [0] for 0.</summary>
    private static IEnumerable<uint> Words(BigInteger n)
    {
        if (n.Sign < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "seed-sequence words must not be negative");
        if (n.IsZero)
        {
            yield return 0;
            yield break;
        }
        while (!n.IsZero)
        {
            yield return (uint)(n & uint.MaxValue);
            n >>= 32;
        }
    }

    private static uint[] MixEntropy(IReadOnlyList<uint> entropy, int poolSize)
    {
        uint hash = InitA;
        uint HashMix(uint value)
        {
            value ^= hash;
            hash *= MultA;
            value *= hash;
            return value ^ (value >> 16);
        }
        static uint Mix(uint x, uint y)
        {
            uint result = MixMultL * x - MixMultR * y;
            return result ^ (result >> 16);
        }

        var mixer = new uint[poolSize];
        for (int i = 0; i < poolSize; i++) mixer[i] = HashMix(i < entropy.Count ? entropy[i] : 0);
        for (int source = 0; source < poolSize; source++)
        {
            for (int destination = 0; destination < poolSize; destination++)
            {
                if (source != destination) mixer[destination] = Mix(mixer[destination], HashMix(mixer[source]));
            }
        }
        for (int source = poolSize; source < entropy.Count; source++)
        {
            for (int destination = 0; destination < poolSize; destination++) mixer[destination] = Mix(mixer[destination], HashMix(entropy[source]));
        }
        return mixer;
    }
}
