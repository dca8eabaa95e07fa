using SharpDiffusion.Cli;
using SharpDiffusion.Engine.ControlNet;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Png;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ControlNet;

/// <summary>
/// Whole txt2img runs with a ControlNet against controlnet_golden's Euler runs (README §2.3: tiny_sd1, seed 777, 8 steps,
/// CFG 7, the hint input.hint[0:1] on cond and uncond): every step ("full") and the guidance window 0..0.5 counted as
/// sd-webui-controlnet counts it ("a1111_guidance", active steps 0-5), through ImageGenerator; and the command line.
/// </summary>
public class ControlNetGenerationTests(ITestOutputHelper output)
{
    private const string GoldenFile = "ext/controlnet_golden.safetensors";
    private static readonly string Model = TestPaths.GoldenFile("tiny_sd1.safetensors");
    private static readonly string Config = TestPaths.GoldenFile("tiny_sd1.config.json");

    /// <summary>The golden runs' txt2img settings (also the resize and hires tests' base request).</summary>
    internal static GenerationRequest Request(ControlUnit? unit) => new()
    {
        Prompt = "a photograph of an astronaut riding a horse",
        NegativePrompt = "",
        Steps = 8,
        Sampler = "Euler",
        CfgScale = 7,
        Seed = 777,
        Width = 16,
        Height = 16,
        A1111SigmaQuirks = false,
        Control = unit == null ? [] : [unit],
    };

    [Theory]
    [InlineData("full", 0.0, 1.0)]
    [InlineData("a1111_guidance", 0.0, 0.5)]
    [InlineData("none", 0.0, 1.0)]
    public void ControlledRunMatchesTheGolden(string run, double start, double end)
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var model = StableDiffusionCheckpoint.Load(Model, new CheckpointLoadOptions { ConfigPath = Config, TokenizerPath = TestPaths.GoldenFile("clip") });
        using var hint = golden.Get("input.hint");
        using var first = hint[0].contiguous();
        var unit = run == "none" ? null : new ControlUnit(TestPaths.GoldenFile("ext/tiny_controlnet_sd1.pth"), first.data<float>().ToArray(), 16, 16)
        {
            GuidanceStart = start,
            GuidanceEnd = end,
        };
        using var result = ImageGenerator.Generate(model, Request(unit));
        using var scope = NewDisposeScope();
        var expected = golden.Get($"sample.{run}.latents");
        double rel = TensorAssert.MaxAbsDiff(expected, result.Latents) / TensorAssert.Rms(expected);
        output.WriteLine($"{run}: latents max abs diff / rms = {rel:E2}");
        TensorAssert.CloseRelativeToRms(expected, result.Latents, 1e-3, $"{run} latents");

        var expectedU8 = golden.Get($"sample.{run}.image_u8")[0].permute(1, 2, 0).flatten();
        var levels = (expectedU8 - tensor(result.Images[0]).to(ScalarType.Float32)).abs();
        double worst = levels.max().item<float>();
        double offShare = levels.gt(0).sum().item<long>() / (double)levels.numel();
        output.WriteLine($"{run}: 8-bit worst {worst} levels, {offShare:P2} of values differ");
        Assert.True(worst <= 1 && offShare <= 0.01, $"{run}: 8-bit image off by {worst} levels on {offShare:P2} of values");
    }

    /// <summary>
    /// The command line with an 8-bit control image: the same run as the service given the same map (the golden hint
    /// is not 8-bit, so the CLI is compared with ImageGenerator on the PNG's values), and the extension's infotext field.
    /// </summary>
    [Fact]
    public void CommandLineAppliesTheControlNetAndWritesTheExtensionsField()
    {
        using var dir = new TempDir();
        using var golden = GoldenTensors.Open(GoldenFile);
        var hintBytes = golden.Floats("input.hint").Take(3 * 16 * 16).ToArray();
        var rgb = new byte[16 * 16 * 3];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 256; i++) rgb[i * 3 + c] = (byte)Math.Round(hintBytes[c * 256 + i] * 255);
        var image = dir.File("hint.png");
        PngEncoder.Save(image, rgb, 16, 16);
        var models = Directory.CreateDirectory(dir.File("models")).FullName;
        Directory.CreateDirectory(Path.Combine(models, "ControlNet"));
        File.Copy(TestPaths.GoldenFile("ext/tiny_controlnet_sd1.pth"), Path.Combine(models, "ControlNet", "tiny_controlnet_sd1.pth"));
        var outPng = dir.File("out.png");
        var stderr = new StringWriter();
        int code = CliApp.Run(new[] { "generate", "--model", Model, "--config", Config, "--tokenizer", TestPaths.GoldenFile("clip"),
            "--prompt", "a photograph of an astronaut riding a horse", "--steps", "8", "--sampler", "Euler", "--cfg", "7", "--seed", "777",
            "--width", "16", "--height", "16", "--models-dir", models, "--control", $"tiny_controlnet_sd1:{image}:0.5:0:0.5", "--out", outPng },
            new StringWriter(), stderr, stderrIsTerminal: false);
        Assert.True(code == 0, stderr.ToString());
        var parameters = PngTextChunks.Get(PngTextChunks.Read(outPng), "parameters");
        Assert.NotNull(parameters);
        output.WriteLine(parameters);
        Assert.Matches(@", ControlNet 0: ""Module: none, Model: tiny_controlnet_sd1 \[[0-9a-f]{8}\], Weight: 0.5, Resize Mode: Crop and Resize, Guidance Start: 0, Guidance End: 0.5, Pixel Perfect: False, Control Mode: Balanced""$", parameters);

        using var model = StableDiffusionCheckpoint.Load(Model, new CheckpointLoadOptions { ConfigPath = Config, TokenizerPath = TestPaths.GoldenFile("clip") });
        var map = new float[3 * 256];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 256; i++) map[c * 256 + i] = rgb[i * 3 + c] / 255f;
        using var expected = ImageGenerator.Generate(model, Request(new ControlUnit(TestPaths.GoldenFile("ext/tiny_controlnet_sd1.pth"), map, 16, 16)
        {
            Weight = 0.5,
            GuidanceEnd = 0.5,
        }));
        using var plain = ImageGenerator.Generate(model, Request(null));
        using var bitmap = SkiaSharp.SKBitmap.Decode(outPng);
        var actual = new byte[16 * 16 * 3];
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 16; x++)
            {
                var pixel = bitmap.GetPixel(x, y);
                (actual[(y * 16 + x) * 3], actual[(y * 16 + x) * 3 + 1], actual[(y * 16 + x) * 3 + 2]) = (pixel.Red, pixel.Green, pixel.Blue);
            }
        Assert.Equal(expected.Images[0], actual);
        Assert.NotEqual(plain.Images[0], actual);
    }

    [Fact]
    public void AMissingControlNetIsOneLineAndExitTwo()
    {
        using var dir = new TempDir();
        var image = dir.File("hint.png");
        PngEncoder.Save(image, new byte[16 * 16 * 3], 16, 16);
        var stderr = new StringWriter();
        int code = CliApp.Run(new[] { "generate", "--model", Model, "--config", Config, "--tokenizer", TestPaths.GoldenFile("clip"),
            "--prompt", "x", "--width", "16", "--height", "16", "--control", $"no_such_net:{image}", "--out", dir.File("o.png") },
            new StringWriter(), stderr, stderrIsTerminal: false);
        Assert.Equal(2, code);
        Assert.Contains("no_such_net: no such ControlNet file", stderr.ToString());
        Assert.Single(stderr.ToString().Trim().Split('\n'));
    }
}
