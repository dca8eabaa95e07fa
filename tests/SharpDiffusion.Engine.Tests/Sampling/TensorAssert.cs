using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>Comparisons with the golden tolerances (README §6).</summary>
internal static class TensorAssert
{
    public static double Rms(Tensor t)
    {
        using var d = t.to(ScalarType.Float64);
        using var sq = d.square();
        using var mean = sq.mean();
        return Math.Sqrt(mean.item<double>());
    }

    public static double MaxAbsDiff(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var e = expected.to(ScalarType.Float64);
        using var a = actual.to(ScalarType.Float64);
        using var diff = (e - a).abs().max();
        return diff.item<double>();
    }

    /// <summary>max |expected - actual| ≤ <paramref name="relative"/> × rms(expected) (sampler latents and steps).</summary>
    public static void CloseRelativeToRms(Tensor expected, Tensor actual, double relative, string what)
    {
        double rms = Rms(expected), diff = MaxAbsDiff(expected, actual);
        Assert.True(diff <= relative * rms, $"{what}: max abs diff {diff:G4} > {relative} x rms {rms:G4}");
    }

    public static void MaxAbs(Tensor expected, Tensor actual, double tolerance, string what)
    {
        double diff = MaxAbsDiff(expected, actual);
        Assert.True(diff <= tolerance, $"{what}: max abs diff {diff:G4} > {tolerance}");
    }

    /// <summary>Every |e - a| ≤ <paramref name="relative"/>·|e| (schedules).</summary>
    public static void Relative(IReadOnlyList<double> expected, IReadOnlyList<double> actual, double relative, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            double tol = relative * Math.Abs(expected[i]);
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol, $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R}");
        }
    }

    public static void Absolute(IReadOnlyList<double> expected, IReadOnlyList<double> actual, double tolerance, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R}");
    }
}
