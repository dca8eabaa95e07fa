using System.Runtime.InteropServices;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Torch;

namespace SharpDiffusion.Tests.Formats.Torch;

/// <summary>Files written by real PyTorch 1.13 (see Fixtures/Torch/Real/README.md), in both save formats.</summary>
public class RealTorchFilesTests
{
    private static string Fixture(string name) =>
        Path.Combine(TestPaths.RepoRoot, "tests", "SharpDiffusion.Tests", "Fixtures", "Torch", "Real", name);

    [Theory]
    [InlineData("emb_zip.pt", ModelFormat.TorchZip)]
    [InlineData("emb_legacy.pt", ModelFormat.TorchLegacy)]
    public void A1111StyleEmbeddingReadsInBothFormats(string file, ModelFormat format)
    {
        using var f = TorchFile.Open(Fixture(file));
        Assert.Equal(format, f.Format);
        var t = Assert.Single(f.Tensors);
        Assert.Equal("string_to_param.*", t.Name);
        Assert.Equal(new long[] { 2, 768 }, t.Shape);
        Assert.Equal("easynegative", f.Metadata["name"]);
        Assert.Equal("1000", f.Metadata["step"]);
        Assert.Equal("265", f.Metadata["string_to_token.*"]);
        var bytes = new byte[t.ByteLength];
        f.ReadTensorData(t, bytes);
        var values = MemoryMarshal.Cast<byte, float>(bytes);
        // torch.manual_seed(0); torch.randn(2, 768): first values and sum as printed by PyTorch.
        Assert.Equal(-1.1258398294448853f, values[0]);
        Assert.Equal(-1.152360200881958f, values[1]);
        Assert.Equal(-0.2505785822868347f, values[2]);
        Assert.Equal(65.19920349121094, values.ToArray().Sum(v => (double)v), 3);
    }

    [Theory]
    [InlineData("views_zip.ckpt")]
    [InlineData("views_legacy.ckpt")]
    public void ViewsComeBackWithTheirShapesAndElements(string file)
    {
        using var f = TorchFile.Open(Fixture(file));
        Assert.Equal("7", f.Metadata["global_step"]);
        var expected = new Dictionary<string, (long[] Shape, float[] Values)>
        {
            ["a"] = (new long[] { 4, 6 }, Enumerable.Range(0, 24).Select(i => (float)i).ToArray()),
            ["t"] = (new long[] { 6, 4 }, new float[] { 0, 6, 12, 18, 1, 7, 13, 19, 2, 8, 14, 20, 3, 9, 15, 21, 4, 10, 16, 22, 5, 11, 17, 23 }),
            ["s"] = (new long[] { 4 }, new float[] { 1, 7, 13, 19 }),
            ["e"] = (new long[] { 2, 3 }, new float[6]),
            ["off"] = (new long[] { 6 }, new float[] { 5, 6, 7, 8, 9, 10 }),
        };
        Assert.Equal(expected.Keys.Order(), f.Tensors.Select(t => t.Name).Order());
        foreach (var t in f.Tensors)
        {
            var (shape, values) = expected[t.Name];
            Assert.Equal(shape, t.Shape);
            var bytes = new byte[t.ByteLength];
            f.ReadTensorData(t, bytes);
            float[] actual = t.DType == TensorDType.F16
                ? MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => (float)h).ToArray()
                : MemoryMarshal.Cast<byte, float>(bytes).ToArray();
            Assert.Equal(values, actual);
        }
    }
}
