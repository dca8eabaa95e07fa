using System.Text.Json;
using SharpDiffusion.Png;

namespace SharpDiffusion.Tests.Cli;

public class PngInfoCommandTests
{
    private const string Parameters = "a red fox\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 42, Size: 2x2";

    private static string WritePng(TempDir dir, params KeyValuePair<string, string>[] text)
    {
        string path = dir.File("image.png");
        PngEncoder.Save(path, new byte[12], 2, 2, text);
        return path;
    }

    [Fact]
    public void PrintsTheParametersText()
    {
        using var dir = new TempDir();
        string png = WritePng(dir, new KeyValuePair<string, string>("parameters", Parameters));

        var r = CliRunner.Run("pnginfo", png);

        Assert.Equal(0, r.ExitCode);
        Assert.Equal(Parameters, r.Stdout.TrimEnd('\n'));
    }

    [Fact]
    public void MissingParametersIsExitTwoWithAClearMessage()
    {
        using var dir = new TempDir();
        string png = WritePng(dir, new KeyValuePair<string, string>("Software", "GIMP"));

        var r = CliRunner.Run("pnginfo", png);

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("no A1111 generation parameters", r.Stderr);
        Assert.Contains("Software", r.Stderr);
        Assert.Equal("", r.Stdout);
    }

    [Fact]
    public void JsonListsEveryChunkAndTheParsedParameters()
    {
        using var dir = new TempDir();
        string png = WritePng(dir, new("parameters", Parameters), new("Software", "SharpDiffusion"));

        var r = CliRunner.Run("pnginfo", "--json", png);

        Assert.Equal(0, r.ExitCode);
        var root = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(2, root.GetProperty("chunks").GetArrayLength());
        Assert.Equal("Software", root.GetProperty("chunks")[1].GetProperty("keyword").GetString());
        var p = root.GetProperty("parameters");
        Assert.Equal("a red fox", p.GetProperty("prompt").GetString());
        Assert.Equal("blurry", p.GetProperty("negative_prompt").GetString());
        Assert.Equal("42", p.GetProperty("settings").GetProperty("Seed").GetString());
    }

    [Fact]
    public void NonPngIsExitTwo()
    {
        using var dir = new TempDir();
        string path = dir.File("fake.png");
        File.WriteAllText(path, "GIF89a");

        var r = CliRunner.Run("pnginfo", path);

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("not a PNG file", r.Stderr);
    }
}
