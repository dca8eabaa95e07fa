using SharpDiffusion.Cli;
using SharpDiffusion.Engine.ControlNet;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Png;

namespace SharpDiffusion.Engine.Tests.ControlNet;

/// <summary>
/// ControlNet maps of their own size fitted to the image (sd-webui-controlnet's resize modes) and ControlNet with
/// hires. fix on the tiny SD1 model: which hint each pass used, the guidance window counted over each pass's steps
/// and the extension's soft weights, observed through <see cref="ImageGenerator.Generate"/>'s ControlNet seam; and the
/// command line's options and infotext. (No golden covers a ControlNet hires run: these check the mechanics.)
/// </summary>
public class ControlNetResizeAndHiresTests
{
    private static readonly string Model = TestPaths.GoldenFile("tiny_sd1.safetensors");
    private static readonly string Config = TestPaths.GoldenFile("tiny_sd1.config.json");
    private static readonly string ControlNetPath = TestPaths.GoldenFile("ext/tiny_controlnet_sd1.pth");

    /// <summary>A one-pixel-edge map (0/255) of <paramref name="width"/> x <paramref name="height"/>: a rectangle outline and a diagonal.</summary>
    private static RgbImage EdgeMap(int width, int height)
    {
        var map = new RgbImage(width, height);
        void Set(int x, int y) => map.Pixels[(y * width + x) * 3] = map.Pixels[(y * width + x) * 3 + 1] = map.Pixels[(y * width + x) * 3 + 2] = 255;
        for (int x = 3; x < width - 3; x++) { Set(x, 2); Set(x, height - 3); }
        for (int y = 2; y < height - 2; y++) { Set(3, y); Set(width - 4, y); }
        for (int i = 5; i < Math.Min(width, height) - 5; i++) Set(i, i);
        return map;
    }

    private static GenerationRequest Request(ControlUnit unit) => ControlNetGenerationTests.Request(unit);

    private static StableDiffusionCheckpoint LoadModel() =>
        StableDiffusionCheckpoint.Load(Model, new CheckpointLoadOptions { ConfigPath = Config, TokenizerPath = TestPaths.GoldenFile("clip") });

    [Fact]
    public void TheHiresPassUsesTheMapFittedToTheHiresSizeCountsItsOwnStepsAndSoftensCanny()
    {
        var unit = ControlUnit.FromMap(ControlNetPath, EdgeMap(24, 20)) with { Module = "canny", Weight = 0.8, GuidanceEnd = 0.5 };
        var request = Request(unit) with { HiresScale = 2, HiresSteps = 10, HiresDenoise = 0.5 };
        using var model = LoadModel();
        var calls = new List<ControlApplication>();
        using var result = ImageGenerator.Generate(model, request, onControl: calls.Add);
        Assert.Equal((32, 32), (result.Width, result.Height));
        Assert.Equal(32 * 32 * 3, result.Images[0].Length);

        // First pass: 16x16 hints, the weight on every residual, steps 0-5 of 8 (progress max(i − 1, 0)/8 <= 0.5).
        var first = calls.Where(c => !c.HiresPass).ToList();
        Assert.All(first, c => Assert.Equal((16, 16), (c.HintWidth, c.HintHeight)));
        Assert.Equal([0, 1, 2, 3, 4, 5], first.Select(c => c.Step));
        Assert.All(first, c => Assert.All(c.Scales, s => Assert.Equal(0.8, s)));

        // Hires pass: 32x32 hints, the counter restarted over the 10 steps it runs (A1111 runs the hires steps asked
        // for, over a schedule of int(10 / 0.5) = 20: steps 0-6, (i − 1)/10 <= 0.5), canny's soft weights 0.8·0.825^(12 − i).
        var hires = calls.Where(c => c.HiresPass).ToList();
        Assert.All(hires, c => Assert.Equal((32, 32), (c.HintWidth, c.HintHeight)));
        Assert.Equal([0, 1, 2, 3, 4, 5, 6], hires.Select(c => c.Step));
        var soft = Enumerable.Range(0, hires[0].Scales.Count).Select(i => 0.8 * Math.Pow(0.825, 12 - i)).ToList();
        Assert.All(hires, c => Assert.Equal(soft, c.Scales));
        Assert.Equal(calls.Count, first.Count + hires.Count);
        Assert.True(calls.IndexOf(hires[0]) == first.Count, "the hires pass runs after the first");
    }

    [Fact]
    public void TheHiresHintIsTheMapFittedToTheHiresSizeNotTheFirstHintUpscaled()
    {
        var map = EdgeMap(24, 20);
        var unit = ControlUnit.FromMap(ControlNetPath, map) with { ResizeMode = ControlResizeMode.ResizeAndFill };
        var low = unit.HintFor(16, 16);
        var high = unit.HintFor(32, 32);
        var expected = ControlUnit.FromMap(ControlNetPath, ControlMapResize.Apply(map, 32, 32, ControlResizeMode.ResizeAndFill)).Hint;
        Assert.Equal(expected, high);
        Assert.Equal(ControlUnit.FromMap(ControlNetPath, ControlMapResize.Apply(map, 16, 16, ControlResizeMode.ResizeAndFill)).Hint, low);
        Assert.All(high, v => Assert.True(v is 0f or 1f)); // an edge map stays binary through the resize
        // A map of the image's size is used as is.
        Assert.Same(unit.Hint, unit.HintFor(24, 20));
    }

    [Fact]
    public void AMapOfTheImagesSizeIsUsedAsIsAndAMapThatIsNot8BitCannotBeResized()
    {
        var values = Enumerable.Range(0, 3 * 16 * 16).Select(i => (i % 97) / 96.5f).ToArray(); // not k/255
        var unit = new ControlUnit(ControlNetPath, values, 16, 16);
        Assert.Same(values, unit.HintFor(16, 16));
        var error = Assert.Throws<ArgumentException>(() => unit.HintFor(32, 32));
        Assert.Contains("not 8-bit", error.Message);
    }

    [Fact]
    public void Img2ImgCountsTheGuidanceWindowOverTheStepsItRuns()
    {
        var unit = ControlUnit.FromMap(ControlNetPath, EdgeMap(16, 16)) with { GuidanceEnd = 0.5 };
        var init = Enumerable.Range(0, 16 * 16 * 3).Select(i => (byte)(i * 7 % 256)).ToArray();
        var request = Request(unit) with { InitImage = init, Strength = 0.5 };
        using var model = LoadModel();
        var calls = new List<ControlApplication>();
        using var result = ImageGenerator.Generate(model, request, onControl: calls.Add);
        // A1111: t_enc = int(0.5·8) = 4, launch_sampling(t_enc + 1 = 5): active while max(i − 1, 0)/5 <= 0.5, steps 0-3 of 5.
        Assert.Equal([0, 1, 2, 3], calls.Select(c => c.Step));
        Assert.Equal(5, Img2ImgSchedule.Plan(8, 0.5, stepsRequested: false).SamplingSteps);
    }

    [Fact]
    public void SoftWeightsAreForCannyAndMlsdInTheHiresPassOnly()
    {
        var canny = new ControlUnit(ControlNetPath, [], 0, 0) { Module = "canny", Weight = 2 };
        var expected = Enumerable.Range(0, 13).Select(i => 2 * Math.Pow(0.825, 12 - i)).ToList();
        Assert.Equal(expected, ControlGuidance.Scales(canny, 13, hiresPass: true));
        Assert.Equal(2.0, ControlGuidance.Scales(canny, 13, hiresPass: true)[12]);
        Assert.All(ControlGuidance.Scales(canny, 13, hiresPass: false), s => Assert.Equal(2.0, s));
        Assert.Equal(expected, ControlGuidance.Scales(canny with { Module = "mlsd" }, 13, hiresPass: true));
        Assert.All(ControlGuidance.Scales(canny with { Module = "invert" }, 13, hiresPass: true), s => Assert.Equal(2.0, s));
        Assert.Throws<ArgumentException>(() => ControlGuidance.Scales(canny, 14, hiresPass: true));
    }

    private static (int Code, string Stderr) Generate(string models, params string[] extra)
    {
        var args = new List<string> { "generate", "--model", Model, "--config", Config, "--tokenizer", TestPaths.GoldenFile("clip"),
            "--prompt", "a photograph of an astronaut riding a horse", "--steps", "6", "--sampler", "Euler", "--seed", "42",
            "--width", "16", "--height", "16", "--models-dir", models };
        args.AddRange(extra);
        var stderr = new StringWriter();
        int code = CliApp.Run(args.ToArray(), new StringWriter(), stderr, stderrIsTerminal: false);
        return (code, stderr.ToString());
    }

    private static string ModelsFolder(TempDir dir)
    {
        var models = Directory.CreateDirectory(dir.File("models")).FullName;
        Directory.CreateDirectory(Path.Combine(models, "ControlNet"));
        File.Copy(ControlNetPath, Path.Combine(models, "ControlNet", "tiny_controlnet_sd1.pth"));
        return models;
    }

    /// <summary>A small drawing: flat rectangles on a background (canny finds their outlines).</summary>
    private static string Drawing(TempDir dir, int width, int height)
    {
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                bool inside = x >= width / 4 && x < width * 3 / 4 && y >= height / 3 && y < height - 2;
                bool bar = x >= 2 && x < 5;
                (rgb[(y * width + x) * 3], rgb[(y * width + x) * 3 + 1], rgb[(y * width + x) * 3 + 2]) = inside ? ((byte)30, (byte)40, (byte)200) : bar ? ((byte)250, (byte)250, (byte)20) : ((byte)200, (byte)190, (byte)170);
            }
        var path = dir.File("drawing.png");
        PngEncoder.Save(path, rgb, width, height);
        return path;
    }

    [Fact]
    public void HiresFixWithACannyControlMakesTheHiresSizeAndWritesBothFields()
    {
        using var dir = new TempDir();
        var models = ModelsFolder(dir);
        var image = Drawing(dir, 30, 22);
        var outPng = dir.File("out.png");
        var (code, stderr) = Generate(models, "--hires-scale", "2", "--hires-steps", "4", "--hires-denoise", "0.55",
            "--control", $"tiny_controlnet_sd1:{image}:0.7", "--control-preprocessor", "canny", "--control-resize-mode", "resize-and-fill", "--out", outPng);
        Assert.True(code == 0, stderr);
        using (var bitmap = SkiaSharp.SKBitmap.Decode(outPng)) Assert.Equal((32, 32), (bitmap.Width, bitmap.Height));
        var parameters = PngTextChunks.Get(PngTextChunks.Read(outPng), "parameters");
        Assert.NotNull(parameters);
        Assert.Contains("Size: 16x16,", parameters);
        Assert.Contains("Denoising strength: 0.55, Hires upscale: 2, Hires steps: 4, Hires upscaler: Latent", parameters);
        Assert.Matches(@"ControlNet 0: ""Module: canny, Model: tiny_controlnet_sd1 \[[0-9a-f]{8}\], Weight: 0.7, Resize Mode: Resize and Fill, Threshold A: 100, Threshold B: 200, Guidance Start: 0, Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced""", parameters);

        // The same run without the ControlNet has other pixels (the control reached the image).
        var plain = dir.File("plain.png");
        Assert.Equal(0, Generate(models, "--hires-scale", "2", "--hires-steps", "4", "--hires-denoise", "0.55", "--out", plain).Code);
        Assert.NotEqual(Pixels(plain), Pixels(outPng));
    }

    private static byte[] Pixels(string png)
    {
        using var bitmap = SkiaSharp.SKBitmap.Decode(png);
        return bitmap.Pixels.SelectMany(p => new[] { p.Red, p.Green, p.Blue }).ToArray();
    }

    [Theory]
    [InlineData(null, "Crop and Resize")]
    [InlineData("just-resize", "Just Resize")]
    [InlineData("crop-and-resize", "Crop and Resize")]
    [InlineData("resize-and-fill", "Resize and Fill")]
    public void AControlImageOfAnotherSizeIsFittedWithTheResizeModeTheInfotextNames(string? mode, string written)
    {
        using var dir = new TempDir();
        var models = ModelsFolder(dir);
        var image = Drawing(dir, 30, 22);
        var outPng = dir.File("out.png");
        string[] extra = mode == null ? [] : ["--control-resize-mode", mode];
        var (code, stderr) = Generate(models, [.. extra, "--control", $"tiny_controlnet_sd1:{image}", "--out", outPng]);
        Assert.True(code == 0, stderr);
        var parameters = PngTextChunks.Get(PngTextChunks.Read(outPng), "parameters")!;
        Assert.Contains($"Module: none, Model: tiny_controlnet_sd1 [", parameters);
        Assert.Contains($"Resize Mode: {written},", parameters);
    }

    [Fact]
    public void AnUnknownResizeModeOrOneWithoutAControlIsOneLineAndExitTwo()
    {
        using var dir = new TempDir();
        var models = ModelsFolder(dir);
        var image = Drawing(dir, 16, 16);
        var (code, stderr) = Generate(models, "--control", $"tiny_controlnet_sd1:{image}", "--control-resize-mode", "stretch", "--out", dir.File("a.png"));
        Assert.Equal(2, code);
        Assert.Contains("unknown ControlNet resize mode 'stretch'", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        (code, stderr) = Generate(models, "--control-resize-mode", "just-resize", "--out", dir.File("b.png"));
        Assert.Equal(2, code);
        Assert.Contains("--control-resize-mode needs a --control unit", stderr);
    }
}
