using SharpDiffusion.Cli;

namespace SharpDiffusion.Engine.Tests.Cli;

/// <summary><c>generate --batch-count</c>: batches one after another on one loaded model, seeds continuing.</summary>
public sealed class GenerateBatchCountTests
{
    private static (int Code, string Stdout, string Stderr) Run(params string[] extra)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        string[] args = ["generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--width", "16", "--height", "16", "--steps", "2", "--prompt", "a cat", .. extra];
        int code = CliApp.Run(args, stdout, stderr, stderrIsTerminal: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void EachBatchContinuesTheSeedsAndEqualsASeparateRun()
    {
        using var dir = new TempDir();
        var (code, stdout, stderr) = Run("--seed", "100", "--batch-count", "2", "--out", dir.File("batches"));
        Assert.True(code == 0, stderr);
        var files = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["00000-100.png", "00001-101.png"], files.Select(Path.GetFileName));

        var single = Run("--seed", "101", "--out", dir.File("single.png"));
        Assert.True(single.Code == 0, single.Stderr);
        Assert.Equal(File.ReadAllBytes(dir.File("single.png")), File.ReadAllBytes(files[1]));
    }

    [Fact]
    public void ABatchCountBelowOneIsAUsageError()
    {
        using var dir = new TempDir();
        var (code, _, stderr) = Run("--seed", "1", "--batch-count", "0", "--out", dir.File("x.png"));
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--batch-count must be at least 1", stderr);
        Assert.False(File.Exists(dir.File("x.png")));
    }
}
