using System.Text.Json;
using SharpDiffusion.Hashing;
using SharpDiffusion.Tests.Fixtures;
using SharpDiffusion.Tests.Hashing;

namespace SharpDiffusion.Tests.Cli;

/// <summary><c>sharpdiffusion list</c>: extra networks of an A1111 models folder, with compatibility against a checkpoint.</summary>
[Collection(CacheDirCollection.Name)]
public sealed class ListCommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HashCacheDirOverride _cache;

    public ListCommandTests() => _cache = new HashCacheDirOverride(_dir.File("cache"));

    public void Dispose()
    {
        _cache.Dispose();
        _dir.Dispose();
    }

    private string ModelsFolder()
    {
        var models = Directory.CreateDirectory(_dir.File("models")).FullName;
        Directory.CreateDirectory(Path.Combine(models, "Lora"));
        Directory.CreateDirectory(Path.Combine(models, "embeddings"));
        SparseSafetensors.Create(Path.Combine(models, "Lora", "detail.safetensors"),
            ReferenceInventory.Load("sd15_kohya_lora_rank8.tsv").Tuples());
        SparseSafetensors.Create(Path.Combine(models, "embeddings", "xl-style.safetensors"),
            new[] { ("clip_l", "F32", new long[] { 2, 768 }), ("clip_g", "F32", new long[] { 2, 1280 }) });
        File.WriteAllText(Path.Combine(models, "notes.txt"), "not a model");
        return models;
    }

    [Fact]
    public void MarksNetworksOfAnotherFamilyIncompatible()
    {
        var models = ModelsFolder();
        var r = CliRunner.Run("list", "--models-dir", models, "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var rows = r.StdoutLines.Select(l => JsonDocument.Parse(l).RootElement).ToDictionary(e => e.GetProperty("name").GetString()!);
        Assert.Equal(2, rows.Count);
        Assert.Equal("lora", rows["detail"].GetProperty("kind").GetString());
        Assert.Equal("sd1", rows["detail"].GetProperty("base").GetString());
        Assert.Equal("yes", rows["detail"].GetProperty("compatible").GetString());
        Assert.Equal("embedding", rows["xl-style"].GetProperty("kind").GetString());
        Assert.Equal("sdxl", rows["xl-style"].GetProperty("base").GetString());
        Assert.Equal("incompatible", rows["xl-style"].GetProperty("compatible").GetString());
        var expectedHash = ModelHashes.Compute(Path.Combine(models, "Lora", "detail.safetensors")).Short;
        Assert.Equal(expectedHash, rows["detail"].GetProperty("short_hash").GetString());
    }

    [Fact]
    public void TableWithoutACheckpointAndUsageErrors()
    {
        var models = ModelsFolder();
        var r = CliRunner.Run("list", "--models-dir", models);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("detail", r.Stdout);
        Assert.Contains("2 extra networks", r.Stdout);

        Assert.Equal(2, CliRunner.Run("list", "--models-dir", _dir.File("missing")).ExitCode);
        var lora = CliRunner.Run("list", "--models-dir", models, "--model", Path.Combine(models, "Lora", "detail.safetensors"));
        Assert.Equal(2, lora.ExitCode);
        Assert.Contains("not a checkpoint", lora.Stderr);
    }
}
