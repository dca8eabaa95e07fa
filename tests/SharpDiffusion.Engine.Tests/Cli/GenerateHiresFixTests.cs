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
