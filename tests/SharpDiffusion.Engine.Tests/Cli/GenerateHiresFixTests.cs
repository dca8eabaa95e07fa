using SharpDiffusion.Cli;
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
        Assert.Contains("--hires-upscaler ESRGAN_4x: not Latent, \"Latent (nearest)\", Lanczos, Nearest or None, nor an upscaler model in", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
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
