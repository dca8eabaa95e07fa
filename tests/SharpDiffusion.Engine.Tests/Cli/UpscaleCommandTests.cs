using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Tests.Upscaling;
using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Png;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Cli;

/// <summary><c>sharpdiffusion upscale</c>: A1111's tiled upscale of rrdb_golden through the CLI, and bad input (exit 2).</summary>
public class UpscaleCommandTests
{

    private static string WriteGoldenInput(TempDir dir)
    {
        using var golden = GoldenTensors.Open("ext/rrdb_golden.safetensors");
        using var scope = NewDisposeScope();
        var image = RrdbGoldenTests.ToImage(golden.Get("tiled.input_u8"));
        var path = dir.File("in.png");
        PngEncoder.Save(path, image.Pixels, image.Width, image.Height);
        return path;
    }

    [Theory]
    [InlineData("tiny_rrdb_x4.pth")]
    [InlineData("tiny_rrdb_x4_old.pth")]
    public void TiledUpscaleThroughTheCliMatchesA1111(string modelFile)
    {
        using var dir = new TempDir();
        var input = WriteGoldenInput(dir);
        var output = dir.File("out.png");
        var (code, stdout, stderr) = Run("upscale", input, "--model", TestPaths.GoldenFile("ext/" + modelFile), "--tile", "16", "--tile-overlap", "4", "--out", output);
        Assert.True(code == 0, stderr);
        Assert.Equal(output, stdout.Trim());
        using var golden = GoldenTensors.Open("ext/rrdb_golden.safetensors");
        using var scope = NewDisposeScope();
        RrdbGoldenTests.AssertLevels(golden.Get("tiled.output_u8"), ImageFileReader.LoadRgb(output), "CLI upscale");
    }

    [Fact]
    public void ModelsAreFoundByNameInTheModelsFolder()
    {
        using var dir = new TempDir();
        var input = WriteGoldenInput(dir);
        Directory.CreateDirectory(dir.File("models/ESRGAN"));
        File.Copy(TestPaths.GoldenFile("ext/tiny_rrdb_x2.pth"), dir.File("models/ESRGAN/tiny_rrdb_x2.pth"));
        var (listCode, listed, _) = Run("upscale", "--list", "--models-dir", dir.File("models"));
        Assert.Equal(0, listCode);
        Assert.StartsWith("tiny_rrdb_x2\t", listed);

        var output = dir.File("out.png");
        var (code, _, stderr) = Run("upscale", input, "--model", "tiny_rrdb_x2", "--models-dir", dir.File("models"), "--scale", "3", "--out", output);
        Assert.True(code == 0, stderr);
        // x2 model, scale 3: two passes (72x80, then 144x160), Lanczos down to int(36·3 // 8 · 8) x int(40·3 // 8 · 8).
        var result = ImageFileReader.LoadRgb(output);
        Assert.Equal((104, 120), (result.Width, result.Height));
    }

    [Fact]
    public void BadInputIsOneLineAndExitCode2()
    {
        using var dir = new TempDir();
        var input = WriteGoldenInput(dir);
        var output = dir.File("out.png");
        var notAnUpscaler = TestPaths.GoldenFile("ext/tiny_controlnet_sd1.pth");
        var x4 = TestPaths.GoldenFile("ext/tiny_rrdb_x4.pth");
        foreach (var (args, expected) in new[]
        {
            (new[] { "upscale", input, "--model", notAnUpscaler, "--out", output }, notAnUpscaler + ": not an ESRGAN/Real-ESRGAN RRDBNet upscaler"),
            (new[] { "upscale", input, "--model", x4, "--tile", "8", "--tile-overlap", "8", "--out", output }, "tile size 8 must be larger than the tile overlap 8"),
            (new[] { "upscale", input, "--model", dir.File("missing.pth"), "--out", output }, dir.File("missing.pth") + ": no such file"),
            (new[] { "upscale", x4, "--model", x4, "--out", output }, x4 + ": not an image"),
        })
        {
            var (code, _, stderr) = Run(args);
            Assert.Equal(2, code);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.StartsWith("sharpdiffusion: " + expected, line);
            Assert.False(File.Exists(output));
        }
    }
}
