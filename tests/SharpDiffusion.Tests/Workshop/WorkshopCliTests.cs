using System.Text.Json;
using SharpDiffusion.Formats;
using SharpDiffusion.Hashing;
using SharpDiffusion.Tests.Cli;
using SharpDiffusion.Tests.Hashing;

namespace SharpDiffusion.Tests.Workshop;

/// <summary>merge and convert through the CLI entry point (in-process). The hash cache goes to a temporary folder.</summary>
[Collection(CacheDirCollection.Name)]
public sealed class WorkshopCliTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HashCacheDirOverride _cache;

    public WorkshopCliTests() => _cache = new HashCacheDirOverride(_dir.File("cache"));

    public void Dispose()
    {
        _cache.Dispose();
        _dir.Dispose();
    }

    private (string A, string B, string C) Models()
    {
        var a = CheckpointFixture.Sd1();
        return (a.WriteSafetensors(_dir.File("a.safetensors")), a.Perturbed(1).WriteSafetensors(_dir.File("b.safetensors")),
            a.Perturbed(2).WriteCkpt(_dir.File("c.ckpt")));
    }

    [Fact]
    public void Merge_writes_the_model_and_a_one_line_summary()
    {
        var (a, b, c) = Models();
        string output = _dir.File("out.safetensors");
        var r = CliRunner.Run("merge", "--model-a", a, "--model-b", b, "--model-c", c, "--mode", "add-difference",
            "--multiplier", "0.6", "--precision", "fp16", "--out", output);

        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Stderr);
        Assert.Single(r.StdoutLines);
        Assert.Contains("merged", r.Stdout);
        using var file = ModelFileReader.Open(output);
        Assert.All(file.Tensors.Where(t => t.DType.IsFloatingPoint()), t => Assert.Equal(TensorDType.F16, t.DType));
        using var recipe = JsonDocument.Parse(file.Metadata["sd_merge_recipe"]);
        Assert.Equal("Add difference", recipe.RootElement.GetProperty("interp_method").GetString());
        Assert.Equal(0.6, recipe.RootElement.GetProperty("multiplier").GetDouble());
        Assert.True(new HashCache(_dir.File("cache/hashes.json")).TryGet(a, out _));
    }

    [Fact]
    public void Merge_with_block_weights_records_them()
    {
        var (a, b, _) = Models();
        string output = _dir.File("mbw.safetensors");
        string weights = string.Join(",", Enumerable.Repeat("0.25", 25));
        var r = CliRunner.Run("merge", "--model-a", a, "--model-b", b, "--multiplier", "0.75", "--block-weights", weights, "--out", output);

        Assert.Equal(0, r.ExitCode);
        using var file = ModelFileReader.Open(output);
        using var recipe = JsonDocument.Parse(file.Metadata["sd_merge_recipe"]);
        var values = recipe.RootElement.GetProperty("block_weights").EnumerateArray().Select(v => v.GetDouble()).ToList();
        Assert.Equal(0.75, values[0]);
        Assert.All(values.Skip(1), v => Assert.Equal(0.25, v));
    }

    [Theory]
    [InlineData("--model-a", "A", "--multiplier", "0.5", "--out", "OUT")]
    [InlineData("--model-a", "A", "--model-b", "B", "--multiplier", "0.5", "--mode", "add-difference", "--out", "OUT")]
    [InlineData("--model-a", "A", "--model-b", "B", "--multiplier", "0.5", "--mode", "sigmoid", "--out", "OUT")]
    [InlineData("--model-a", "A", "--model-b", "B", "--multiplier", "half", "--out", "OUT")]
    [InlineData("--model-a", "A", "--model-b", "B", "--multiplier", "0.5", "--block-weights", "1,2,3", "--out", "OUT")]
    [InlineData("--model-a", "A", "--model-b", "B", "--multiplier", "0.5", "--precision", "fp8", "--out", "OUT")]
    [InlineData("--model-a", "missing.safetensors", "--model-b", "B", "--multiplier", "0.5", "--out", "OUT")]
    public void Merge_bad_usage_exits_2_and_writes_nothing(params string[] args)
    {
        var (a, b, _) = Models();
        string output = _dir.File("out.safetensors");
        var resolved = args.Select(x => x switch { "A" => a, "B" => b, "OUT" => output, "missing.safetensors" => _dir.File(x), _ => x }).ToArray();
        var r = CliRunner.Run(["merge", .. resolved]);

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("sharpdiffusion:", r.Stderr);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Merge_of_different_families_fails_with_one_line_and_exit_2()
    {
        var (a, _, _) = Models();
        string output = _dir.File("out.safetensors");
        var r = CliRunner.Run("merge", "--model-a", a, "--model-b", TestPaths.GoldenFile("tiny_sdxl.safetensors"), "--multiplier", "0.5", "--out", output);

        Assert.Equal(2, r.ExitCode);
        Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("different families", r.Stderr);
        Assert.Equal("", r.Stdout);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Convert_exit_codes_and_metadata()
    {
        var (_, _, c) = Models();
        string output = _dir.File("c.safetensors");
        var ok = CliRunner.Run("convert", c, "--out", output, "--precision", "bf16", "--prune");
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("0 dropped", ok.Stdout);
        using (var file = ModelFileReader.Open(output))
        {
            using var record = JsonDocument.Parse(file.Metadata["sharpdiffusion_convert"]);
            Assert.Equal("bf16", record.RootElement.GetProperty("precision").GetString());
            Assert.True(record.RootElement.GetProperty("prune").GetBoolean());
        }

        var same = CliRunner.Run("convert", c, "--out", c);
        Assert.Equal(2, same.ExitCode);
        Assert.Contains("overwrite the input", same.Stderr);

        Assert.Equal(2, CliRunner.Run("convert", _dir.File("nope.ckpt"), "--out", _dir.File("x.safetensors")).ExitCode);
        Assert.Equal(2, CliRunner.Run("convert", c).ExitCode);
        Assert.Equal(2, CliRunner.Run("convert", c, "--out", _dir.File("x.safetensors"), "--precision", "int8").ExitCode);
        Assert.False(File.Exists(_dir.File("x.safetensors")));
    }
}
