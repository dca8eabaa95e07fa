using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Sampling.Samplers;

/// <summary>
/// k-diffusion <c>sample_lms</c> (order 4): linear multistep on the last (up to) 4 slopes, with coefficients the
/// integrals of the Lagrange basis polynomials over [σ_i, σ_{i+1}].
/// </summary>
public sealed class LmsSampler : Sampler
{
    public LmsSampler(int order = 4)
    {
        if (order < 1) throw new ArgumentOutOfRangeException(nameof(order), order, "LMS order must be at least 1");
        Order = order;
    }

    public int Order { get; }

    public override string Name => "LMS";

    public override string Alias => "lms";

    protected override Tensor Run(IGuidedDenoiser model, Tensor x, IReadOnlyList<double> sigmas, SamplerContext context)
    {
        var current = x;
        var slopes = new List<Tensor>();
        try
        {
            for (int i = 0; i < sigmas.Count - 1; i++)
            {
                using var scope = NewDisposeScope();
                var denoised = model.Denoise(current, sigmas[i]);
                slopes.Add(ToD(current, sigmas[i], denoised).DetachFromDisposeScope());
                if (slopes.Count > Order)
                {
                    slopes[0].Dispose();
                    slopes.RemoveAt(0);
                }
                Report(context, i, sigmas, current, denoised);
                int order = Math.Min(i + 1, Order);
                var next = current;
                for (int j = 0; j < order; j++)
                {
                    double coefficient = LinearMultistepCoefficient(order, sigmas, i, j);
                    next = next + slopes[slopes.Count - 1 - j] * coefficient;
                }
                current = Advance(current, next.DetachFromDisposeScope(), x);
            }
        }
        finally
        {
            foreach (var s in slopes) s.Dispose();
        }
        return current;
    }

    /// <summary>
    /// k-diffusion <c>linear_multistep_coeff</c>: ∫ over [t_i, t_{i+1}] of the Lagrange basis polynomial of node
    /// t_{i-j} on nodes t_i … t_{i-order+1}. The integrand is a polynomial of degree order-1, so Gauss–Legendre with
    /// enough nodes is exact up to rounding (scipy's adaptive quad gives the same value).
    /// </summary>
    public static double LinearMultistepCoefficient(int order, IReadOnlyList<double> t, int i, int j)
    {
        if (order - 1 > i) throw new ArgumentException($"order {order} too high for step {i}");
        double a = t[i], b = t[i + 1];
        double half = (b - a) / 2, mid = (a + b) / 2;
        double sum = 0;
        for (int n = 0; n < GaussNodes.Length; n++)
        {
            double tau = mid + half * GaussNodes[n];
            double product = 1.0;
            for (int k = 0; k < order; k++)
            {
                if (k == j) continue;
                product *= (tau - t[i - k]) / (t[i - j] - t[i - k]);
            }
            sum += GaussWeights[n] * product;
        }
        return sum * half;
    }

    // 8-point Gauss–Legendre on [-1, 1]: exact for polynomials up to degree 15.
    private static readonly double[] GaussNodes =
    {
        -0.9602898564975363, -0.7966664774136267, -0.5255324099163290, -0.1834346424956498,
        0.1834346424956498, 0.5255324099163290, 0.7966664774136267, 0.9602898564975363,
    };

    private static readonly double[] GaussWeights =
    {
        0.1012285362903763, 0.2223810344533745, 0.3137066458778873, 0.3626837833783620,
        0.3626837833783620, 0.3137066458778873, 0.2223810344533745, 0.1012285362903763,
    };
}
