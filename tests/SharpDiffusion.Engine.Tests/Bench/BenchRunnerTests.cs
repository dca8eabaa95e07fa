using SharpDiffusion.Engine.Diagnostics;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Bench;

/// <summary>The bench on the tiny random model: every phase measured, temporary files removed, CPU flags parsed.</summary>
public class BenchRunnerTests
{
    [Fact]
    public void TinyRandomModelIsMeasuredAndItsTemporaryFilesRemoved()
    {
        using var dir = new TempDir();
        var lines = new List<string>();
        var result = BenchRunner.Run(new BenchOptions
        {
            Architecture = RandomModelArchitecture.Tiny,
            Size = 32,
            Steps = 3,
            Precision = ScalarType.Float32,
            Threads = 1,
            TempFolder = dir.Path,
            TokenizerPath = TestPaths.GoldenFile("clip"),
        }, lines.Add);

        Assert.Empty(Directory.GetFiles(dir.Path));
        Assert.Equal("random tiny", result.Model);
        Assert.Equal(3, result.StepSeconds.Count);
        Assert.Equal((result.StepSeconds[1] + result.StepSeconds[2]) / 2, result.UNetStepSeconds, 9);
        Assert.All(new[] { result.WriteSeconds, result.LoadSeconds, result.TextEncodeSeconds, result.VaeDecodeSeconds }, s => Assert.True(s > 0));
        Assert.True(result.PeakRssMb > 50);
        Assert.Null(result.UNetGflops); // the FLOP count is SD1.5's
        Assert.Equal("tokenizer", result.TextInput);
        Assert.Equal("fp32", result.Precision);
        Assert.Equal(1, result.Threads);
        Assert.Empty(result.Notes); // finite image, NNPACK off, tokenizer found
        Assert.Contains(lines, l => l.StartsWith("sampling 3 guided step(s) at 32x32", StringComparison.Ordinal));
    }

    [Fact]
    public void SizesTheModelCannotTakeAreRejected()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ArgumentException>(() => BenchRunner.Run(new BenchOptions
        {
            Architecture = RandomModelArchitecture.Tiny, Size = 18, Steps = 1, Precision = ScalarType.Float32, Threads = 1, TempFolder = dir.Path,
        }));
        Assert.Equal("--size 18: must be a positive multiple of 4 for this model", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void NnpackCanBeSwitchedOffInTheBundledLibtorch()
    {
        Assert.True(NnpackSwitch.Disable());
        Assert.True(NnpackSwitch.Disable()); // idempotent
    }

    [Fact]
    public void CpuFlagsComeFromTheFirstFlagsLine()
    {
        var features = BenchCpuFeatures.Parse(new[]
        {
            "processor\t: 0",
            "flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 amx_tile",
            "flags\t\t: amx_bf16",
        });
        Assert.Equal(new[] { "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile" }, features.Flags);
        Assert.True(features.HasFastBf16);
        Assert.False(BenchCpuFeatures.Parse(new[] { "flags : avx2 fma avx512f" }).HasFastBf16);
        Assert.Empty(BenchCpuFeatures.Parse(new[] { "model name : x" }).Flags);
    }
}
