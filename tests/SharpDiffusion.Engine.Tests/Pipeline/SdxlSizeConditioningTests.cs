using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Conditioners;

namespace SharpDiffusion.Engine.Tests.Pipeline;

/// <summary>
/// SDXL's micro-conditioning from the command line (<c>--original-size</c>, <c>--crop-top-left</c>, <c>--target-size</c>):
/// the CLI's run equals the engine's with the same <see cref="ImageSizeConditioning"/> (whose embedding the SDXL golden
/// covers), unset parts default to A1111's values, and an SD1 model refuses them.
/// </summary>
public class SdxlSizeConditioningTests
{
    private static string[] Generate(string latents, params string[] extra) =>
        ["generate", "--model", TestPaths.GoldenFile("tiny_sdxl.safetensors"), "--config", TestPaths.GoldenFile("tiny_sdxl.config.json"),
         "--tokenizer", TestPaths.GoldenFile("clip"), "--prompt", "a lighthouse", "--steps", "3", "--sampler", "Euler", "--seed", "11",
         "--width", "32", "--height", "32", "--save-latents", latents, .. extra];

    [Fact]
    public void CommandLineSizeConditioningIsTheEnginesAndDefaultsToA1111s()
    {
        using var dir = new TempDir();
        var plain = dir.File("plain.safetensors");
        var sized = dir.File("sized.safetensors");
        var partial = dir.File("partial.safetensors");
        Assert.Equal(0, CliHarness.Run(Generate(plain, "--out", dir.File("plain.png"))).Code);
        var run = CliHarness.Run(Generate(sized, "--original-size", "64x48", "--crop-top-left", "4,8", "--target-size", "40x24", "--out", dir.File("sized.png")));
        Assert.True(run.Code == 0, run.Stderr);
        Assert.Equal(0, CliHarness.Run(Generate(partial, "--crop-top-left", "0,0", "--out", dir.File("partial.png"))).Code);

        using var model = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sdxl.safetensors"),
            new CheckpointLoadOptions { ConfigPath = TestPaths.GoldenFile("tiny_sdxl.config.json"), TokenizerPath = TestPaths.GoldenFile("clip") });
        using var engine = ImageGenerator.Generate(model, new GenerationRequest
        {
            Prompt = "a lighthouse", Steps = 3, Sampler = "Euler", Seed = 11, Width = 32, Height = 32,
            SizeConditioning = new ImageSizeConditioning(OriginalHeight: 48, OriginalWidth: 64, CropTop: 4, CropLeft: 8, TargetHeight: 24, TargetWidth: 40),
        });
        var expected = engine.Latents.data<float>().ToArray();
        Assert.Equal(expected, CliHarness.SavedLatents(sized));
        Assert.NotEqual(CliHarness.SavedLatents(plain), CliHarness.SavedLatents(sized));
        // Only the crop given, as 0,0: the image size everywhere else, which is A1111's default.
        Assert.Equal(CliHarness.SavedLatents(plain), CliHarness.SavedLatents(partial));
    }

    [Fact]
    public void AnSd1ModelRefusesSizeConditioningInOneLine()
    {
        using var dir = new TempDir();
        var run = CliHarness.Run("generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--prompt", "x", "--steps", "2", "--width", "32", "--height", "32",
            "--original-size", "64x64", "--models-dir", Directory.CreateDirectory(dir.File("models")).FullName, "--out", dir.File("o.png"));
        Assert.Equal(2, run.Code);
        Assert.Contains("size conditioning", run.Stderr);
        Assert.Single(run.Stderr.Trim().Split('\n'));
    }
}
