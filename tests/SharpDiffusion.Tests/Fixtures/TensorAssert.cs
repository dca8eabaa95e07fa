using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fixtures;

internal static class TensorAssert
{
    /// <summary>Every tensor of <paramref name="actual"/> is in <paramref name="expected"/> with the same shape, type and bytes.</summary>
    public static void EachEqualsTheOriginal(IModelFile expected, IModelFile actual)
    {
        var originals = expected.Tensors.ToDictionary(t => t.Name);
        foreach (var t in actual.Tensors)
        {
            Assert.True(originals.TryGetValue(t.Name, out var o), $"{t.Name} is not in {expected.Path}");
            Assert.Equal(o.Shape, t.Shape);
            Assert.Equal(o.DType, t.DType);
            var a = new byte[o.ByteLength];
            var b = new byte[t.ByteLength];
            expected.ReadTensorData(o, a);
            actual.ReadTensorData(t, b);
            Assert.True(a.AsSpan().SequenceEqual(b), $"{t.Name} differs");
        }
    }
}
