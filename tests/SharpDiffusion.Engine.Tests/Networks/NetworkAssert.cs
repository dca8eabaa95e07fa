using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Networks;

internal static class NetworkAssert
{
    /// <summary>Every element within 1e-6 (relative to magnitudes above 1) of the float64 reference.</summary>
    public static void Close(Dense expected, Tensor actual, string what)
    {
        Assert.Equal(expected.Shape, actual.shape);
        using var a = actual.to(ScalarType.Float64).contiguous();
        var values = a.data<double>().ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            double tolerance = 1e-6 * Math.Max(1, Math.Abs(expected.Data[i]));
            Assert.True(Math.Abs(values[i] - expected.Data[i]) <= tolerance,
                $"{what}[{i}]: expected {expected.Data[i]:R}, got {values[i]:R}");
        }
    }

    public static byte[] Bytes(Tensor t)
    {
        using var c = t.contiguous();
        return c.bytes.ToArray();
    }
}
