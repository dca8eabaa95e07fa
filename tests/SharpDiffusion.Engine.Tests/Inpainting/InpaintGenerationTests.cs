using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Png;
using SkiaSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Inpainting;

/// <summary>
/// Whole inpainting runs against ../shared/golden/ext/inpaint_golden (A1111 img2img-inpaint, README §1): the 9-channel
/// tiny_sd1_inpaint (run9) and the 4-channel tiny_sd1 with the latent mask (run4), through ImageGenerator and through
/// <c>sharpdiffusion generate --mask</c>. The golden's VAE posterior draws come from torch's CPU generator seeded
/// 6301 (init image) and 6302 (masked image): <c>VaeSampleSeed</c> 6301 reproduces them.
/// </summary>
public class InpaintGenerationTests(ITestOutputHelper output)
{
    private const string GoldenFile = "ext/inpaint_golden.safetensors";
    private const int Size = 32;
    private const long Seed = 20240301, VaeSeed = 6301;
    private const string Prompt = "a photograph of an astronaut riding a horse", Negative = "blurry, low quality";

    private static (string Model, string Config) ModelFor(string run) => run == "run9"
        ? (TestPaths.GoldenFile("ext/tiny_sd1_inpaint.safetensors"), TestPaths.GoldenFile("ext/tiny_sd1_inpaint.config.json"))
        : (TestPaths.GoldenFile("tiny_sd1.safetensors"), TestPaths.GoldenFile("tiny_sd1.config.json"));

    /// <summary>NCHW 0..255 floats to HWC bytes.</summary>
    private static byte[] Hwc(GoldenTensors golden, string name)
    {
        using var t = golden.Get(name);
        using var hwc = t[0].permute(1, 2, 0).contiguous();
        return hwc.data<float>().ToArray().Select(v => (byte)v).ToArray();
    }

    private void AssertImageClose(byte[] expected, byte[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        int worst = 0, off = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            int d = Math.Abs(expected[i] - actual[i]);
            worst = Math.Max(worst, d);
            if (d > 0) off++;
        }
        double share = off / (double)expected.Length;
        output.WriteLine($"{what}: 8-bit worst {worst} levels, {share:P2} of values differ");
        Assert.True(worst <= 1, $"{what}: 8-bit image differs by {worst} levels");
        Assert.True(share <= 0.01, $"{what}: {share:P2} of 8-bit values differ");
    }

    [Theory]
    [InlineData("run9")]
    [InlineData("run4")]
    public void InpaintingRunMatchesA1111(string run)
    {
        var (modelPath, config) = ModelFor(run);
        using var golden = GoldenTensors.Open(GoldenFile);
        using var model = StableDiffusionCheckpoint.Load(modelPath, new CheckpointLoadOptions { ConfigPath = config, TokenizerPath = TestPaths.GoldenFile("clip") });
        Assert.Equal(run == "run9", model.IsInpainting);
        var steps = new List<(Tensor X, Tensor Denoised)>();
        using var result = ImageGenerator.Generate(model, new GenerationRequest
        {
            Prompt = Prompt,
            NegativePrompt = Negative,
            Steps = 8,
            Sampler = "Euler",
            CfgScale = 7,
            Seed = Seed,
            Width = Size,
            Height = Size,
            Strength = 0.75,
            InitImage = Hwc(golden, "input.image_u8"),
            Mask = Hwc(golden, "input.mask_u8"),
            MaskBlur = 4,
            VaeSampleSeed = VaeSeed,
            A1111SigmaQuirks = false,
        }, step => steps.Add((step.X.clone().DetachFromDisposeScope(), step.Denoised.clone().DetachFromDisposeScope())));
        using var scope = NewDisposeScope();
        foreach (var (x, d) in steps) { scope.Attach(x); scope.Attach(d); }

        // 7 Euler steps (t_enc 6 of 8); every step's x and blended denoised value.
        var expectedX = golden.Get($"{run}.steps_x");
        var expectedDenoised = golden.Get($"{run}.steps_denoised");
        Assert.Equal(expectedX.shape[0], steps.Count);
        for (int i = 0; i < steps.Count; i++)
        {
            TensorAssert.CloseRelativeToRms(expectedX[i], steps[i].X.reshape(expectedX[i].shape), 1e-3, $"{run} step {i} x");
            TensorAssert.CloseRelativeToRms(expectedDenoised[i], steps[i].Denoised.reshape(expectedDenoised[i].shape), 1e-3, $"{run} step {i} denoised");
        }
        var expectedLatents = golden.Get($"{run}.latents");
        output.WriteLine($"{run}: latents max abs diff / rms = {TensorAssert.MaxAbsDiff(expectedLatents, result.Latents) / TensorAssert.Rms(expectedLatents):E2}");
        TensorAssert.CloseRelativeToRms(expectedLatents, result.Latents, 1e-3, $"{run} latents");
        AssertImageClose(Hwc(golden, $"{run}.output_u8"), result.Images[0], $"{run} output");
    }

    [Fact]
    public void CommandLineInpaintsAsA1111AndWritesItsFields()
    {
        using var dir = new TempDir();
        using var golden = GoldenTensors.Open(GoldenFile);
        var image = dir.File("in.png");
        var mask = dir.File("mask.png");
        var outPng = dir.File("out.png");
        PngEncoder.Save(image, Hwc(golden, "input.image_u8"), Size, Size);
        // An RGB PNG with equal channels: Pillow's convert('L') gives back the value.
        var maskBytes = Hwc(golden, "input.mask_u8");
        PngEncoder.Save(mask, maskBytes.SelectMany(v => new[] { v, v, v }).ToArray(), Size, Size);

        var (modelPath, config) = ModelFor("run9");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(new[] { "generate", "--model", modelPath, "--config", config, "--tokenizer", TestPaths.GoldenFile("clip"),
            "--prompt", Prompt, "--negative", Negative, "--steps", "8", "--sampler", "Euler", "--cfg", "7", "--seed", Seed.ToString(),
            "--width", "32", "--height", "32", "--init-image", image, "--mask", mask, "--mask-blur", "4", "--strength", "0.75",
            "--vae-sample-seed", VaeSeed.ToString(), "--out", outPng }, stdout, stderr, stderrIsTerminal: false);
        Assert.True(code == 0, stderr.ToString());

        var parameters = PngTextChunks.Get(PngTextChunks.Read(outPng), "parameters");
        Assert.NotNull(parameters);
        Assert.EndsWith(", Model: tiny_sd1_inpaint, Denoising strength: 0.75, Mask blur: 4", parameters);
        using var bitmap = SKBitmap.Decode(outPng);
        var rgb = new byte[Size * Size * 3];
        for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
            {
                var c = bitmap.GetPixel(x, y);
                int i = (y * Size + x) * 3;
                (rgb[i], rgb[i + 1], rgb[i + 2]) = (c.Red, c.Green, c.Blue);
            }
        AssertImageClose(Hwc(golden, "run9.output_u8"), rgb, "CLI run9 output");
    }

    [Fact]
    public void AMaskWithoutAnInitImageIsOneLineAndExitTwo()
    {
        using var dir = new TempDir();
        var mask = dir.File("mask.png");
        PngEncoder.Save(mask, new byte[16 * 16 * 3], 16, 16);
        var (modelPath, config) = ModelFor("run4");
        var stderr = new StringWriter();
        int code = CliApp.Run(new[] { "generate", "--model", modelPath, "--config", config, "--tokenizer", TestPaths.GoldenFile("clip"),
            "--prompt", "x", "--width", "16", "--height", "16", "--mask", mask, "--out", dir.File("o.png") }, new StringWriter(), stderr, stderrIsTerminal: false);
        Assert.Equal(2, code);
        Assert.Contains("--mask needs --init-image", stderr.ToString());
        Assert.Single(stderr.ToString().Trim().Split('\n'));
    }
}
