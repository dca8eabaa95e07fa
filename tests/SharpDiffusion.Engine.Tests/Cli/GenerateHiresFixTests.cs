using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Tests.Upscaling;
using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Png;

namespace SharpDiffusion.Engine.Tests.Cli;

/// <summary>
/// <c>generate --hires-scale</c> on the tiny model (no hires golden exists: these check the second pass's size, that it
/// changes the image, A1111's infotext fields and that <c>--from-png</c> re-runs them; not numerical fidelity).
/// </summary>
public class GenerateHiresFixTests
{
    private static (int Code, string Stderr) Run(params string[] extra)
    {
        var args = new List<string> { "generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--prompt", "a photograph of an astronaut riding a horse", "--steps", "6", "--sampler", "Euler", "--seed", "42" };
        args.AddRange(extra);
        var stderr = new StringWriter();
        int code = CliApp.Run(args.ToArray(), new StringWriter(), stderr, stderrIsTerminal: false);
        return (code, stderr.ToString());
    }

    private static (int Width, int Height, byte[] Rgb) Read(string path)
    {
        using var bitmap = SkiaSharp.SKBitmap.Decode(path);
        var rgb = new byte[bitmap.Width * bitmap.Height * 3];
        for (int y = 0; y < bitmap.Height; y++)
            for (int x = 0; x < bitmap.Width; x++)
            {
                var p = bitmap.GetPixel(x, y);
                int i = (y * bitmap.Width + x) * 3;
                (rgb[i], rgb[i + 1], rgb[i + 2]) = (p.Red, p.Green, p.Blue);
            }
        return (bitmap.Width, bitmap.Height, rgb);
    }

    [Theory]
    [InlineData("Latent")]
    [InlineData("Lanczos")]
    [InlineData("None")]
    [InlineData("Nearest")]
    public void SecondPassDoublesTheSizeAndWritesA1111sFields(string upscaler)
    {
        using var dir = new TempDir();
        var hires = dir.File("hires.png");
        var (code, stderr) = Run("--width", "16", "--height", "16", "--hires-scale", "2", "--hires-upscaler", upscaler, "--hires-steps", "4",
            "--hires-denoise", "0.55", "--out", hires);
        Assert.True(code == 0, stderr);
        var parameters = PngTextChunks.Get(PngTextChunks.Read(hires), "parameters");
        Assert.NotNull(parameters);
        Assert.Contains("Size: 16x16,", parameters);
        Assert.EndsWith($"Denoising strength: 0.55, Hires upscale: 2, Hires steps: 4, Hires upscaler: {upscaler}", parameters);
        var image = Read(hires);
        Assert.Equal((32, 32), (image.Width, image.Height));

        var plain = dir.File("plain.png");
        Assert.Equal(0, Run("--width", "32", "--height", "32", "--out", plain).Code);
        Assert.NotEqual(Read(plain).Rgb, image.Rgb);

        // --from-png re-runs the second pass from the infotext alone.
        var again = dir.File("again.png");
        var rerun = CliApp.Run(new[] { "generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--from-png", hires, "--out", again }, new StringWriter(), new StringWriter(), stderrIsTerminal: false);
        Assert.Equal(0, rerun);
        Assert.Equal(image.Rgb, Read(again).Rgb);
    }

    [Fact]
    public void AHiresPromptConditionsTheSecondPassOnly()
    {
        using var dir = new TempDir();
        string[] common = ["--width", "16", "--height", "16", "--hires-scale", "2", "--hires-upscaler", "None", "--hires-steps", "4", "--hires-denoise", "0.55"];
        var hires = dir.File("hires.png");
        var (code, stderr) = Run([.. common, "--hires-prompt", "a red apple, on a table", "--hires-negative", "blurry", "--out", hires]);
        Assert.True(code == 0, stderr);
        var parameters = PngTextChunks.Get(PngTextChunks.Read(hires), "parameters")!;
        // A1111 1.10's order and quoting: Hires prompt and Hires negative prompt after Hires sampler, JSON-quoted when they hold a comma.
        Assert.EndsWith("Denoising strength: 0.55, Hires prompt: \"a red apple, on a table\", Hires negative prompt: blurry, Hires upscale: 2, Hires steps: 4, Hires upscaler: None", parameters);

        // With the "None" upscaler the second pass is img2img of the first pass's 8-bit image, Lanczos-resized: so the
        // job equals the first pass with the prompt, then img2img of it with the hires prompts. The hires pass runs its 4
        // steps over A1111's schedule of int(4 / 0.55) = 7, which plain img2img walks at 7 steps (t_enc int(0.55·7) = 3).
        var first = dir.File("first.png");
        Assert.Equal(0, Run("--width", "16", "--height", "16", "--out", first).Code);
        var second = dir.File("second.png");
        var err = new StringWriter();
        code = CliApp.Run(["generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--prompt", "a red apple, on a table", "--negative", "blurry", "--steps", "7", "--sampler", "Euler",
            "--seed", "42", "--init-image", first, "--width", "32", "--height", "32", "--strength", "0.55", "--out", second], new StringWriter(), err, stderrIsTerminal: false);
        Assert.True(code == 0, err.ToString());
        // Equal up to float rounding (img2img scales the 8-bit image by 1/127.5 - 1, the hires pass by /255 * 2 - 1),
        // which the sampler carries to a few levels here and there; the hires prompt's own effect is far larger.
        double Mean(byte[] a, byte[] b) => a.Zip(b).Average(p => Math.Abs(p.First - p.Second));
        double rounding = Mean(Read(second).Rgb, Read(hires).Rgb);

        // The same text as the prompt is no hires prompt: no field, the plain hires image.
        var same = dir.File("same.png");
        Assert.Equal(0, Run([.. common, "--hires-prompt", "a photograph of an astronaut riding a horse", "--out", same]).Code);
        var plain = dir.File("plain.png");
        Assert.Equal(0, Run([.. common, "--out", plain]).Code);
        Assert.Equal(Read(plain).Rgb, Read(same).Rgb);
        double effect = Mean(Read(plain).Rgb, Read(hires).Rgb);
        Assert.True(rounding < 0.05 * effect, $"img2img of the first pass differs by {rounding:F3} levels on average, the hires prompt's effect is {effect:F3}");
        Assert.DoesNotContain("Hires prompt", PngTextChunks.Get(PngTextChunks.Read(same), "parameters"));

        // --from-png re-runs both prompts from the infotext alone.
        var again = dir.File("again.png");
        int rerun = CliApp.Run(new[] { "generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--from-png", hires, "--out", again }, new StringWriter(), new StringWriter(), stderrIsTerminal: false);
        Assert.Equal(0, rerun);
        Assert.Equal(Read(hires).Rgb, Read(again).Rgb);

        // Other extra networks in the hires prompt: one clear line, exit 2.
        (code, stderr) = Run([.. common, "--hires-prompt", "an apple <lora:style:1>", "--out", dir.File("lora.png")]);
        Assert.Equal(2, code);
        Assert.Contains("the hires prompt's extra networks (<lora:style:1>) differ from the prompt's (none)", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Theory]
    // A1111's calculate_target_resolution (opt_f 8): hr_upscale_to_x/y, truncate_x/y, then the cut latents' size.
    [InlineData(512, 768, 0, 0, 2.0, 1024, 1536, 0, 0, 1024, 1536)]
    [InlineData(512, 768, 1024, 0, 2.0, 1024, 1536, 0, 0, 1024, 1536)]
    [InlineData(768, 512, 1024, 0, 2.0, 1024, 682, 0, 0, 1024, 680)]
    [InlineData(512, 768, 0, 1024, 2.0, 682, 1024, 0, 0, 680, 1024)]
    [InlineData(512, 768, 1024, 1024, 2.0, 1024, 1536, 0, 64, 1024, 1024)]
    [InlineData(768, 512, 1024, 1024, 2.0, 1536, 1024, 64, 0, 1024, 1024)]
    [InlineData(512, 512, 1280, 720, 2.0, 1280, 1280, 0, 70, 1280, 720)]
    [InlineData(512, 512, 0, 0, 1.5, 768, 768, 0, 0, 768, 768)]
    public void HiresTargetSizesAreA1111s(int width, int height, int resizeX, int resizeY, double scale,
        int upscaleX, int upscaleY, int cutX, int cutY, int finalX, int finalY)
    {
        var request = new GenerationRequest { Width = width, Height = height, HiresScale = scale, HiresResize = resizeX == 0 && resizeY == 0 ? null : (resizeX, resizeY) };
        Assert.Equal((upscaleX, upscaleY, cutX, cutY), request.HiresUpscale(8));
        Assert.Equal((finalX, finalY), request.HiresSize(8));
    }

    [Fact]
    public void AHiresResizeOfAnotherAspectRatioCropsAndIsReplayed()
    {
        using var dir = new TempDir();
        var wide = dir.File("wide.png");
        var (code, stderr) = Run("--width", "16", "--height", "16", "--hires-resize", "32x24", "--hires-upscaler", "Latent", "--hires-steps", "3",
            "--hires-denoise", "0.5", "--out", wide);
        Assert.True(code == 0, stderr);
        var parameters = PngTextChunks.Get(PngTextChunks.Read(wide), "parameters")!;
        Assert.EndsWith("Denoising strength: 0.5, Hires resize: 32x24, Hires steps: 3, Hires upscaler: Latent", parameters);
        var image = Read(wide);
        Assert.Equal((32, 24), (image.Width, image.Height));
        var again = dir.File("again.png");
        int rerun = CliApp.Run(new[] { "generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--from-png", wide, "--out", again }, new StringWriter(), new StringWriter(), stderrIsTerminal: false);
        Assert.Equal(0, rerun);
        Assert.Equal(image.Rgb, Read(again).Rgb);
        (code, stderr) = Run("--width", "16", "--height", "16", "--hires-resize", "wide", "--out", dir.File("bad.png"));
        Assert.Equal(2, code);
        Assert.Contains("--hires-resize wide: WxH", stderr);
    }

    [Fact]
    public void AnUnknownUpscalerIsOneLineAndExitTwo()
    {
        using var dir = new TempDir();
        var (code, stderr) = Run("--width", "16", "--height", "16", "--hires-scale", "2", "--hires-upscaler", "ESRGAN_4x", "--out", dir.File("o.png"));
        Assert.Equal(2, code);
        Assert.Contains("--hires-upscaler ESRGAN_4x: not Latent, \"Latent (nearest)\", Lanczos, Nearest or None, nor an upscaler file or model in", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public void AnUpscalerModelResizesAsA1111sResizeImage()
    {
        // A1111 images.resize_image(0, im, w, h, upscaler): the model's Upscaler.upscale at scale max(w/W, h/H), then
        // Lanczos. 36x40 -> 72x80 with the x4 model: one untiled pass (golden tiled.untiled_u8, 144x160), Lanczos down.
        using var golden = GoldenTensors.Open("ext/rrdb_golden.safetensors");
        using var model = UpscalerModel.Load(TestPaths.GoldenFile("ext/tiny_rrdb_x4.pth"));
        var input = RrdbGoldenTests.ToImage(golden.Get("tiled.input_u8"));
        var expected = PillowResize.Resize(RrdbGoldenTests.ToImage(golden.Get("tiled.untiled_u8")), 72, 80, PillowFilter.Lanczos);
        var actual = ImageGenerator.HiresImageResize(input, 72, 80, "tiny_rrdb_x4", model, tileSize: 0, tileOverlap: 0); // untiled, as the golden
        Assert.Equal((72, 80), (actual.Width, actual.Height));
        int off = expected.Pixels.Zip(actual.Pixels).Count(p => p.First != p.Second);
        int worst = expected.Pixels.Zip(actual.Pixels).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(worst <= 1 && off <= expected.Pixels.Length / 100, $"{off} of {expected.Pixels.Length} values differ, worst by {worst}");

        // A1111's default tiling (192, overlap 8) is the model's Upscaler.upscale (tiling: RrdbGoldenTests), then nothing more.
        Assert.Equal(ModelUpscale.Upscale(model, input, 2.0).Pixels, ImageGenerator.HiresImageResize(input, 72, 80, "tiny_rrdb_x4", model).Pixels);

        // "None": Lanczos to the size alone.
        Assert.Equal(PillowResize.Resize(input, 72, 80, PillowFilter.Lanczos).Pixels, ImageGenerator.HiresImageResize(input, 72, 80, "None", null).Pixels);
    }

    [Fact]
    public void HiresUpscalerModelsAndSamplerAreFoundWrittenAndReplayed()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("models/ESRGAN"));
        File.Copy(TestPaths.GoldenFile("ext/tiny_rrdb_x4.pth"), dir.File("models/ESRGAN/tiny_rrdb_x4.pth"));
        var withModel = dir.File("model.png");
        var (code, stderr) = Run("--width", "16", "--height", "16", "--hires-scale", "2", "--hires-upscaler", "tiny_rrdb_x4", "--models-dir", dir.File("models"),
            "--hires-sampler", "DPM++ 2M", "--hires-schedule", "Karras", "--hires-denoise", "0.55", "--out", withModel);
        Assert.True(code == 0, stderr);
        var parameters = PngTextChunks.Get(PngTextChunks.Read(withModel), "parameters")!;
        // A1111 1.10's order: Denoising strength, Hires sampler, Hires schedule type (set when it differs), Hires upscale, Hires upscaler.
        Assert.EndsWith("Denoising strength: 0.55, Hires sampler: DPM++ 2M, Hires schedule type: Karras, Hires upscale: 2, Hires upscaler: tiny_rrdb_x4", parameters);
        var image = Read(withModel);
        Assert.Equal((32, 32), (image.Width, image.Height));

        var lanczos = dir.File("lanczos.png");
        Assert.Equal(0, Run("--width", "16", "--height", "16", "--hires-scale", "2", "--hires-upscaler", "Lanczos",
            "--hires-sampler", "DPM++ 2M", "--hires-schedule", "Karras", "--hires-denoise", "0.55", "--out", lanczos).Code);
        Assert.NotEqual(Read(lanczos).Rgb, image.Rgb);
        var sameSampler = dir.File("euler.png");
        Assert.Equal(0, Run("--width", "16", "--height", "16", "--hires-scale", "2", "--hires-upscaler", "tiny_rrdb_x4", "--models-dir", dir.File("models"),
            "--hires-denoise", "0.55", "--out", sameSampler).Code);
        Assert.NotEqual(Read(sameSampler).Rgb, image.Rgb);
        Assert.DoesNotContain("Hires sampler", PngTextChunks.Get(PngTextChunks.Read(sameSampler), "parameters"));

        var again = dir.File("again.png");
        int rerun = CliApp.Run(new[] { "generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--models-dir", dir.File("models"), "--from-png", withModel, "--out", again }, new StringWriter(), new StringWriter(), stderrIsTerminal: false);
        Assert.Equal(0, rerun);
        Assert.Equal(image.Rgb, Read(again).Rgb);
    }

    [Fact]
    public void AnEsrganModelOfTheModelsFolderUpscalesTheSecondPass()
    {
        using var dir = new TempDir();
        var models = dir.File("models");
        Directory.CreateDirectory(Path.Combine(models, "ESRGAN"));
        File.Copy(TestPaths.GoldenFile("ext/tiny_rrdb_x2.pth"), Path.Combine(models, "ESRGAN", "tiny_rrdb_x2.pth"));
        string[] common = ["--width", "16", "--height", "16", "--hires-scale", "2", "--hires-steps", "3", "--hires-denoise", "0.3", "--models-dir", models];
        var withModel = dir.File("model.png");
        var (code, stderr) = Run([.. common, "--hires-upscaler", "tiny_rrdb_x2", "--out", withModel]);
        Assert.True(code == 0, stderr);
        Assert.EndsWith("Hires upscaler: tiny_rrdb_x2", PngTextChunks.Get(PngTextChunks.Read(withModel), "parameters"));
        var image = Read(withModel);
        Assert.Equal((32, 32), (image.Width, image.Height));
        // The model's upscale, not Lanczos, fed the second pass.
        var lanczos = dir.File("lanczos.png");
        Assert.Equal(0, Run([.. common, "--hires-upscaler", "Lanczos", "--out", lanczos]).Code);
        Assert.NotEqual(Read(lanczos).Rgb, image.Rgb);
    }
}
