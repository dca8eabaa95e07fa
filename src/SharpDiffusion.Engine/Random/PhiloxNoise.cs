using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Random;

/// <summary>
/// A1111 "NV" source (modules/rng_philox.py): imitates CUDA <c>torch.randn</c> on the CPU. Element i of call k is
/// Philox4x32-10 with counter (k, 0, i, 0) and key (seed low 32 bits, seed high 32 bits); the first two output
/// words go through one Box–Muller branch. Each call advances the offset k by one.
/// </summary>
public sealed class PhiloxNoise : INoiseSource
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    private const uint W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    // rng_philox.py keeps these as float32 numpy arrays; uint32 * float32-array promotes to float64,
    // so the products are taken in double from the float32-rounded constants.
    private const double TwoPow32Inv = (double)2.3283064e-10f;
    private const double TwoPow32Inv2Pi = (double)(float)(2.3283064e-10 * 6.2831855);
    private const double HalfTwoPow32Inv = (double)(2.3283064e-10f / 2f);
    private const double HalfTwoPow32Inv2Pi = (double)((float)(2.3283064e-10 * 6.2831855) / 2f);

    public PhiloxNoise(long seed)
    {
        Seed = seed;
    }

    public long Seed { get; }

    /// <summary>Number of <see cref="Randn"/> calls made so far (the Philox counter's first word).</summary>
    public uint Offset { get; private set; }

    public Tensor Randn(ReadOnlySpan<long> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        if (n > uint.MaxValue) throw new ArgumentException($"Philox noise supports at most 2^32 values per call, asked for {n}", nameof(shape));
        var values = Generate(Offset, (int)n);
        Offset++;
        return tensor(values).reshape(shape.ToArray());
    }

    /// <summary>The values of one call at <paramref name="offset"/>, without changing the stream.</summary>
    public float[] Generate(uint offset, int count)
    {
        var values = new float[count];
        uint keyLow = (uint)(ulong)Seed, keyHigh = (uint)((ulong)Seed >> 32);
        for (int i = 0; i < count; i++)
        {
            var (a, b) = Philox4x32(offset, (uint)i, keyLow, keyHigh);
            values[i] = BoxMuller(a, b);
        }
        return values;
    }

    /// <summary>Philox4x32-10 on counter (c0, 0, c2, 0); returns the first two output words.</summary>
    internal static (uint, uint) Philox4x32(uint c0, uint c2, uint k0, uint k1)
    {
        uint c1 = 0, c3 = 0;
        for (int round = 0; round < 10; round++)
        {
            if (round > 0)
            {
                k0 += W0;
                k1 += W1;
            }
            ulong p0 = (ulong)c0 * M0;
            ulong p1 = (ulong)c2 * M1;
            uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            uint n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            c1 = (uint)p1;
            c3 = (uint)p0;
            c0 = n0;
            c2 = n2;
        }
        return (c0, c1);
    }

    private static float BoxMuller(uint x, uint y)
    {
        double u = x * TwoPow32Inv + HalfTwoPow32Inv;
        double v = y * TwoPow32Inv2Pi + HalfTwoPow32Inv2Pi;
        return (float)(Math.Sqrt(-2.0 * Math.Log(u)) * Math.Sin(v));
    }
}
