using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Random;

/// <summary>
/// k-diffusion's <c>BrownianTreeNoiseSampler</c> as A1111 creates it (<c>create_noise_sampler</c>): one
/// <see cref="BrownianTree"/> per image on [smallest positive sigma, largest sigma] of the sampler's sigmas, seeded
/// with that image's seed; <see cref="Noise"/> gives unit-variance noise for a step from sigma to sigma_next.
/// </summary>
public sealed class BrownianNoiseSampler : IDisposable
{
    private readonly BrownianTree[] trees;

    /// <param name="sigmaMin">float32 smallest positive sigma of the run</param>
    /// <param name="sigmaMax">float32 largest sigma of the run</param>
    /// <param name="seeds">one seed per image of the batch</param>
    /// <param name="imageShape">latent shape of one image, e.g. [4, 64, 64]</param>
    public BrownianNoiseSampler(double sigmaMin, double sigmaMax, IReadOnlyList<long> seeds, ReadOnlySpan<long> imageShape, NoiseSourceKind kind = NoiseSourceKind.Cpu)
    {
        if (seeds.Count == 0) throw new ArgumentException("a Brownian noise sampler needs at least one seed", nameof(seeds));
        var shape = imageShape.ToArray();
        trees = seeds.Select(seed => new BrownianTree((float)sigmaMin, (float)sigmaMax, seed, shape, kind)).ToArray();
    }

    /// <summary>For sigmas of a run: the tree spans the smallest positive and the largest of them.</summary>
    public static BrownianNoiseSampler ForSigmas(IReadOnlyList<double> sigmas, IReadOnlyList<long> seeds, ReadOnlySpan<long> imageShape, NoiseSourceKind kind = NoiseSourceKind.Cpu)
    {
        var positive = sigmas.Where(s => s > 0).ToArray();
        if (positive.Length == 0) throw new ArgumentException("no positive sigma to span a Brownian tree", nameof(sigmas));
        return new BrownianNoiseSampler(positive.Min(), sigmas.Max(), seeds, imageShape, kind);
    }

    public IReadOnlyList<BrownianTree> Trees => trees;

    /// <summary>W(sigma_next) - W(sigma) per image ([batch, ..shape]; negative direction when sigma &gt; sigma_next).</summary>
    public Tensor Increment(double sigma, double sigmaNext)
    {
        float a = (float)sigma, b = (float)sigmaNext;
        double lo = Math.Min(a, b), hi = Math.Max(a, b);
        using var scope = NewDisposeScope();
        var parts = trees.Select(t => t.Increment(lo, hi)).ToArray();
        var w = stack(parts);
        if (a > b) w = w.neg();
        return w.MoveToOuterDisposeScope();
    }

    /// <summary><c>w / sqrt(|sigma_next - sigma|)</c> (float32 scalars, as k-diffusion computes them).</summary>
    public Tensor Noise(double sigma, double sigmaNext)
    {
        float distance = MathF.Sqrt(MathF.Abs((float)sigmaNext - (float)sigma));
        using var w = Increment(sigma, sigmaNext);
        return w / distance;
    }

    public void Dispose()
    {
        foreach (var tree in trees) tree.Dispose();
    }
}
