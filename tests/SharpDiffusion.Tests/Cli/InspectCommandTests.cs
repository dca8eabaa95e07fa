using System.Security.Cryptography;
using System.Text.Json;
using SharpDiffusion.Hashing;
using SharpDiffusion.Tests.Hashing;

namespace SharpDiffusion.Tests.Cli;

[Collection(CacheDirCollection.Name)]
public class InspectCommandTests
{
    private static readonly string[] AlwaysPresent =
        ["path", "format", "kind", "base", "components", "precision", "parameters", "tensors", "evidence", "metadata"];

    [Fact]
    public void JsonLinesHaveTheFieldsAndTheInvalidFileDoesNotStopTheScan()
    {
        using var dir = new TempDir();
        ModelFolderFixture.Create(dir.Path);

        var r = CliRunner.Run("inspect", dir.Path, "--json");

        Assert.Equal(1, r.ExitCode);
        var lines = r.StdoutLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(4, lines.Count);
        foreach (var line in lines)
            foreach (var field in AlwaysPresent)
                Assert.True(line.TryGetProperty(field, out _), $"missing '{field}' in {line}");
        // Ordinal order: files of a folder, then its subfolders.
        Assert.Equal(["add_detail.safetensors", "broken.safetensors", "tiny.sft", "vae-ft-mse"],
            lines.Select(l => Path.GetFileName(l.GetProperty("path").GetString())));

        var broken = lines[1];
        Assert.Equal("invalid", broken.GetProperty("kind").GetString());
        Assert.Equal("invalid", broken.GetProperty("error").GetProperty("kind").GetString());
        Assert.Contains("HTML", broken.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(JsonValueKind.Null, broken.GetProperty("format").ValueKind);

        var lora = lines[0];
        Assert.Equal("safetensors", lora.GetProperty("format").GetString());
        Assert.Equal(792, lora.GetProperty("tensors").GetInt32());
        Assert.False(lora.TryGetProperty("error", out _));
        Assert.False(lora.TryGetProperty("hashes", out _));
        string tags = lora.GetProperty("metadata").GetProperty("ss_tag_frequency").GetString()!;
        Assert.True(tags.Length < 2100, "long metadata values are capped");
        Assert.EndsWith("[5000 chars, truncated]", tags);
        Assert.Equal("8", lora.GetProperty("metadata").GetProperty("ss_network_dim").GetString());

        var vae = lines[3];
        Assert.Equal("diffusers", vae.GetProperty("format").GetString());
        Assert.Equal(248, vae.GetProperty("tensors").GetInt32());
        Assert.Equal(83_653_863, vae.GetProperty("parameters").GetInt64());
        Assert.Equal("AutoencoderKL", vae.GetProperty("metadata").GetProperty("vae.config._class_name").GetString());
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void AllValidGivesExitCodeZero()
    {
        using var dir = new TempDir();
        ModelFolderFixture.Create(dir.Path, withBroken: false);

        var r = CliRunner.Run("inspect", "--json", dir.Path);

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(3, r.StdoutLines.Length);
    }

    [Fact]
    public void SeveralPathsAndASingleFileAreInspectedWhateverTheExtension()
    {
        using var dir = new TempDir();
        ModelFolderFixture.Create(dir.Path, withBroken: false);
        string renamed = dir.File("model.weights");
        File.Copy(dir.File(ModelFolderFixture.LoraName), renamed);

        var r = CliRunner.Run("inspect", "--json", renamed, Path.Combine(dir.Path, "vae-ft-mse"));

        Assert.Equal(0, r.ExitCode);
        var formats = r.StdoutLines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("format").GetString());
        Assert.Equal(["safetensors", "diffusers"], formats);
    }

    [Fact]
    public void PathsStartingWithAtAreNotResponseFiles()
    {
        // System.CommandLine would read "@name" as a response file; here it is a path like any other.
        var r = CliRunner.Run("inspect", "@no-such-model.safetensors");

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("@no-such-model.safetensors: no such file or folder", r.Stderr);
    }

    [Fact]
    public void TableGroupsByKindListsInvalidFilesAndSummarises()
    {
        using var dir = new TempDir();
        ModelFolderFixture.Create(dir.Path);

        var r = CliRunner.Run("inspect", dir.Path);

        Assert.Equal(1, r.ExitCode);
        Assert.Contains("add_detail.safetensors", r.Stdout);
        Assert.Contains("vae-ft-mse", r.Stdout);
        Assert.Contains("diffusers", r.Stdout);
        Assert.Contains("Invalid (1):", r.Stdout);
        Assert.Contains("broken.safetensors: not a model file", r.Stdout);
        Assert.Contains("3 models read", r.Stdout);
        Assert.Contains("1 invalid", r.Stdout);
        Assert.DoesNotContain("\u001b[", r.Stdout);
    }

    [Fact]
    public void HashOptionAddsHashesAndFillsTheCache()
    {
        using var dir = new TempDir();
        string models = dir.File("models");
        Directory.CreateDirectory(models);
        string small = Path.Combine(models, "small.safetensors");
        Fixtures.SparseSafetensors.Create(small, [("w", "F32", [64, 64])]);
        using (new HashCacheDirOverride(dir.File("cache")))
        {

            var r = CliRunner.Run("inspect", "--json", "--hash", models);

            Assert.Equal(0, r.ExitCode);
            var hashes = JsonDocument.Parse(r.StdoutLines.Single()).RootElement.GetProperty("hashes");
            string sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(small)));
            Assert.Equal(sha, hashes.GetProperty("sha256").GetString());
            Assert.Equal(sha[..10], hashes.GetProperty("short").GetString());
            Assert.Equal("e3b0c442", hashes.GetProperty("legacy").GetString());
            Assert.Equal(64, hashes.GetProperty("addnet").GetString()!.Length);
            Assert.True(new HashCache(dir.File("cache/hashes.json")).TryGet(small, out var cached));
            Assert.Equal(sha, cached.Sha256);

            var table = CliRunner.Run("inspect", "--hash", models);
            Assert.Contains(sha[..10], table.Stdout);
        }
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("inspect --frobnicate .")]
    [InlineData("inspect . --frobnicate")]
    [InlineData("frobnicate")]
    [InlineData("pnginfo")]
    [InlineData("")]
    public void BadUsageExitsWithTwo(string commandLine)
    {
        var r = CliRunner.Run(commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries));

        Assert.Equal(2, r.ExitCode);
        Assert.StartsWith("sharpdiffusion: ", r.Stderr);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void MissingPathExitsWithTwo()
    {
        using var dir = new TempDir();

        var r = CliRunner.Run("inspect", dir.File("does-not-exist"));

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("does-not-exist: no such file or folder", r.Stderr);
    }
}
