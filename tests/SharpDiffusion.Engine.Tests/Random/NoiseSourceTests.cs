using System.Text.Json;
using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Tests.Sampling;

namespace SharpDiffusion.Engine.Tests.Random;

/// <summary>Both RNG sources against rng.json / rng.safetensors (README §5).</summary>
public class NoiseSourceTests
{
    private static readonly long[] Shape = { 1, 4, 8, 8 };

    private static JsonElement RngJson()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.GoldenFile("rng.json")));
        return doc.RootElement.Clone();
    }

    private static float[] Values(INoiseSource source, params long[] shape)
    {
        using var t = source.Randn(shape);
        Assert.Equal(shape, t.shape);
        return t.data<float>().ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(42)]
    [InlineData(12345)]
    public void TorchCpuNoiseIsBitExact(long seed)
    {
        using var g = GoldenTensors.Open("rng.safetensors");
        using var source = new TorchCpuNoise(seed);
        Assert.Equal(g.Floats($"torch_cpu.seed{seed}"), Values(source, Shape));
        Assert.Equal(g.Floats($"torch_cpu.seed{seed}.second_call"), Values(source, Shape));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(42)]
    [InlineData(12345)]
    public void PhiloxNoiseMatchesA1111(long seed)
    {
        using var g = GoldenTensors.Open("rng.safetensors");
        var source = new PhiloxNoise(seed);
        AssertWithinOneUlp(g.Floats($"philox.seed{seed}"), Values(source, Shape), $"philox seed {seed}");
        Assert.Equal(1u, source.Offset);
        AssertWithinOneUlp(g.Floats($"philox.seed{seed}.second_call"), Values(source, Shape), $"philox seed {seed} second call");
    }

    [Theory]
    [InlineData("3x5", new long[] { 3, 5 })]
    [InlineData("1x4x9x7", new long[] { 1, 4, 9, 7 })]
    [InlineData("17", new long[] { 17 })]
    public void SmallAndTailShapesMatch(string key, long[] shape)
    {
        var entry = RngJson().GetProperty("extra_shapes").GetProperty(key);
        long seed = entry.GetProperty("seed").GetInt64();
        var cpu = entry.GetProperty("torch_cpu").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        var nv = entry.GetProperty("philox_nv").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        using var torchSource = new TorchCpuNoise(seed);
        Assert.Equal(cpu, Values(torchSource, shape));
        AssertWithinOneUlp(nv, Values(new PhiloxNoise(seed), shape), "philox " + key);
    }

    [Fact]
    public void PhiloxReproducesTheDocstringExample()
    {
        var check = RngJson().GetProperty("philox_docstring_check");
        var expected = check.GetProperty("values").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        var shape = check.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var actual = Values(new PhiloxNoise(check.GetProperty("seed").GetInt64()), shape);
        AssertWithinOneUlp(expected, actual, "docstring");
        // The docstring's own printout (made on another machine; its last digits differ by ~2e-7).
        Assert.InRange(actual[0], -0.92466259f - 1e-6f, -0.92466259f + 1e-6f);
        Assert.InRange(actual[11], 2.26550497f - 1e-6f, 2.26550497f + 1e-6f);
    }

    [Fact]
    public void BatchNoiseGivesEachImageItsOwnSeed()
    {
        using var batch = BatchNoise.ForSeeds(NoiseSourceKind.Cpu, 41, 2);
        using var first = batch.Next(new long[] { 4, 8, 8 });
        Assert.Equal(new long[] { 2, 4, 8, 8 }, first.shape);
        using var g = GoldenTensors.Open("rng.safetensors");
        Assert.Equal(g.Floats("torch_cpu.seed42"), first[1].data<float>().ToArray());
        using var second = batch.Next(new long[] { 4, 8, 8 });
        Assert.Equal(g.Floats("torch_cpu.seed42.second_call"), second[1].data<float>().ToArray());
    }

    [Fact]
    public void SourcesAreFoundByA1111Names()
    {
        Assert.Equal(NoiseSourceKind.Cpu, NoiseSources.Parse("CPU"));
        Assert.Equal(NoiseSourceKind.Nv, NoiseSources.Parse("nv"));
        Assert.IsType<PhiloxNoise>(NoiseSources.Create("NV", 3));
        var e = Assert.Throws<ArgumentException>(() => NoiseSources.Parse("xpu"));
        Assert.Contains("CPU, NV", e.Message);
    }

    private static void AssertWithinOneUlp(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            int ulps = Math.Abs(BitConverter.SingleToInt32Bits(expected[i]) - BitConverter.SingleToInt32Bits(actual[i]));
            Assert.True(ulps <= 1, $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} ({ulps} ulp)");
        }
    }
}
