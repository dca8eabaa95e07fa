using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Engine.Inpainting;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Png;
using SkiaSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Inpainting;

/// <summary>
/// A1111's other masked contents (fill, latent noise, latent nothing), "only masked" and outpainting, through the
/// generator and the command line, on tiny_sd1 with the image, mask, noise and schedule of ext/inpaint_golden (§1).
/// </summary>
public class InpaintOptionsTests
{
    private const string GoldenFile = "ext/inpaint_golden.safetensors";
    private const int Size = 32;
    private const long Seed = 20240301, VaeSeed = 6301;

    private static StableDiffusionCheckpoint LoadTinySd1() => StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"),
        new CheckpointLoadOptions { ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"), TokenizerPath = TestPaths.GoldenFile("clip") });

    private static byte[] Hwc(GoldenTensors golden, string name)
    {
        using var t = golden.Get(name);
        using var hwc = t[0].permute(1, 2, 0).contiguous();
        return hwc.data<float>().ToArray().Select(v => (byte)v).ToArray();
    }

    private static GenerationRequest GoldenRequest(GoldenTensors golden) => new()
    {
        Prompt = "a photograph of an astronaut riding a horse",
        NegativePrompt = "blurry, low quality",
        Steps = 8,
        Sampler = "Euler",
        CfgScale = 7,
        Seed = Seed,
        Width = Size,
        Height = Size,
        Strength = 0.75,
        InitImage = Hwc(golden, "input.image_u8"),
        Mask = Hwc(golden, "input.mask_u8"),
        VaeSampleSeed = VaeSeed,
        A1111SigmaQuirks = false,
    };

    /// <summary>A smooth 8-bit test picture (so a repaint shows): gradients per channel.</summary>
    private static byte[] Gradient(int width, int height)
    {
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 3;
                (rgb[i], rgb[i + 1], rgb[i + 2]) = ((byte)(x * 255 / (width - 1)), (byte)(y * 255 / (height - 1)), (byte)(90 + (x + y) % 64));
            }
        return rgb;
    }

    [Theory]
    [InlineData(InpaintFill.LatentNothing, 0.0)]
    [InlineData(InpaintFill.LatentNoise, 1.0)]
    public void LatentContentsStartTheMaskedLatentsFromNothingOrFromTheSeedsNoise(InpaintFill fill, double noiseShare)
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var model = LoadTinySd1();
        Tensor? firstX = null;
        using var result = ImageGenerator.Generate(model, GoldenRequest(golden) with { InpaintFill = fill },
            step => firstX ??= step.X.clone().DetachFromDisposeScope());
        using var x0 = firstX!;
        using var scope = NewDisposeScope();
        // x at the first step = init_latent + noise·σ0; in the masked latents init_latent is 0 (nothing) or the same
        // draw #0 of the seed as the sampler's noise (latent noise).
        var noise = golden.Get("pre.noise");
        var sigma0 = golden.Get("pre.sigma_sched")[0].item<float>();
        var nmask = golden.Get("pre.nmask").unsqueeze(0);
        Assert.True(nmask.sum().item<float>() > 0, "the golden mask repaints some latents");
        var expected = noise.mul(sigma0 + noiseShare).mul(nmask);
        TensorAssert.MaxAbs(expected, x0.reshape(expected.shape).mul(nmask), 1e-4, $"{fill}: masked latents at step 0");
        var original = golden.Get("pre.xi").mul(nmask);
        Assert.True(TensorAssert.MaxAbsDiff(original, x0.reshape(expected.shape).mul(nmask)) > 0.1, "the masked start differs from 'original'");
    }

    [Fact]
    public void FillLatentKeepsTheUnmaskedLatentsAndLeavesOtherContentsAlone()
    {
        using var scope = NewDisposeScope();
        var init = randn(2, 4, 3, 5, generator: new Generator(7));
        var plane = tensor(new float[] { 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0 }, new long[] { 1, 3, 5 });
        var nmask = plane.repeat(4, 1, 1);
        var mask = nmask.neg().add(1);
        var nothing = InpaintMasking.FillLatent(init, mask, nmask, InpaintFill.LatentNothing, NoiseSourceKind.Cpu, 5);
        TensorAssert.MaxAbs(init.mul(mask), nothing, 0, "latent nothing");
        var noisy = InpaintMasking.FillLatent(init, mask, nmask, InpaintFill.LatentNoise, NoiseSourceKind.Cpu, 5);
        using var sources = BatchNoise.ForSeeds(NoiseSourceKind.Cpu, 5, 2);
        var draw = sources.Next(new long[] { 4, 3, 5 });
        TensorAssert.MaxAbs(init.mul(mask).add(draw.mul(nmask)), noisy, 0, "latent noise: seeds 5 and 6, draw #0");
        Assert.Same(init, InpaintMasking.FillLatent(init, mask, nmask, InpaintFill.Fill, NoiseSourceKind.Cpu, 5));
    }

    [Theory]
    [InlineData(InpaintFill.Fill)]
    [InlineData(InpaintFill.LatentNoise)]
    [InlineData(InpaintFill.LatentNothing)]
    public void EveryContentKeepsThePixelsOutsideTheMaskAndRepaintsInside(InpaintFill fill)
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var model = LoadTinySd1();
        var request = GoldenRequest(golden) with { InpaintFill = fill };
        using var original = ImageGenerator.Generate(model, request with { InpaintFill = InpaintFill.Original });
        using var result = ImageGenerator.Generate(model, request);
        var overlayMask = InpaintMasking.MaskForOverlay(InpaintMasking.BlurMask(request.Mask!, Size, Size, 4, 4));
        int kept = 0, differ = 0, repainted = 0;
        for (int i = 0; i < Size * Size; i++)
        {
            if (overlayMask[i] == 0)
            {
                kept++;
                for (int c = 0; c < 3; c++) Assert.Equal(request.InitImage![i * 3 + c], result.Images[0][i * 3 + c]);
            }
            else if (overlayMask[i] == 255)
            {
                repainted++;
                if (Enumerable.Range(0, 3).Any(c => original.Images[0][i * 3 + c] != result.Images[0][i * 3 + c])) differ++;
            }
        }
        Assert.True(kept > 0 && repainted > 0);
        Assert.True(differ > repainted / 2, $"{fill}: {differ} of {repainted} masked pixels differ from 'original'");
    }

    [Fact]
    public void OnlyMaskedGeneratesTheCropAndPastesItBackIntoTheImageAtItsOwnSize()
    {
        const int imageWidth = 80, imageHeight = 56;
        using var model = LoadTinySd1();
        var image = Gradient(imageWidth, imageHeight);
        var mask = new byte[imageWidth * imageHeight];
        for (int y = 20; y < 30; y++)
            for (int x = 44; x < 60; x++) mask[y * imageWidth + x] = 255;
        var request = new GenerationRequest
        {
            Prompt = "a red ball",
            Steps = 4,
            Sampler = "Euler",
            Seed = 11,
            Width = Size,
            Height = Size,
            InitImage = image,
            Mask = mask,
            MaskBlur = 2,
            InpaintFullRes = true,
            InpaintFullResPadding = 3,
            ImageSize = (imageWidth, imageHeight),
        };
        using var result = ImageGenerator.Generate(model, request);
        Assert.Equal((imageWidth, imageHeight), (result.Width, result.Height));
        var output = result.Images[0];
        Assert.Equal(imageWidth * imageHeight * 3, output.Length);

        // The blurred mask (σ 2, kernel 11) reaches 5 pixels out: bounds x 39..65, y 15..35, plus padding 3 = 36..68 x 12..38
        // (32x26), widened to 1:1 -> x 36..68, y 9..41.
        var region = InpaintArea.ExpandToAspect(InpaintArea.MaskBounds(InpaintMasking.BlurMask(mask, imageWidth, imageHeight, 2, 2), imageWidth, imageHeight, 3)!.Value,
            Size, Size, imageWidth, imageHeight);
        Assert.Equal(new CropRegion(36, 9, 68, 41), region);
        int changedInside = 0;
        for (int y = 0; y < imageHeight; y++)
            for (int x = 0; x < imageWidth; x++)
            {
                int i = (y * imageWidth + x) * 3;
                bool same = output[i] == image[i] && output[i + 1] == image[i + 1] && output[i + 2] == image[i + 2];
                if (x < region.X1 || x >= region.X2 || y < region.Y1 || y >= region.Y2) Assert.True(same, $"pixel ({x}, {y}) outside the region changed");
                else if (mask[y * imageWidth + x] == 255 && !same) changedInside++;
            }
        Assert.True(changedInside > 16 * 10 / 2, $"{changedInside} of 160 masked pixels repainted");
    }

    [Fact]
    public void OutpaintingBuildsA1111sCanvasAndMasks()
    {
        var image = Gradient(40, 24);
        var request = new GenerationRequest { InitImage = image, ImageSize = (40, 24), MaskBlur = 4, Outpaint = new OutpaintBorders(16, 0, 8, 8) };
        var expanded = GenerationService.Normalize(request with { Sampler = "Euler" });
        // Width 40 + 16 -> 64: all 24 extra to the left; height 24 + 16 -> 64: 40 shared 8:8 -> up 20, down 20.
        Assert.Equal((64, 64), (expanded.Width, expanded.Height)); // tiles of the job size (512), cut to the canvas
        Assert.Null(expanded.Outpaint);
        Assert.Equal((64, 64), expanded.ImageSize);
        Assert.Equal(new OutpaintTiles(64, 64, 24, 0, 20, 20, 16), expanded.OutpaintTiles);
        Assert.Equal(8, expanded.MaskBlur);
        var canvas = new RgbImage(64, 64, expanded.InitImage!);
        Assert.Equal(image.AsSpan(0, 3).ToArray(), canvas.Pixels.AsSpan((20 * 64 + 24) * 3, 3).ToArray());
        Assert.All(canvas.Pixels.AsSpan(0, 24 * 3).ToArray(), v => Assert.Equal(0, v));
        // Mask: black over x 24+8..64 and y 20+8..64-20-8 = 28..36 (inclusive, Pillow's rectangle), white elsewhere.
        byte MaskAt(byte[] m, int x, int y) => m[y * 64 + x];
        Assert.Equal(255, MaskAt(expanded.Mask!, 31, 30));
        Assert.Equal(0, MaskAt(expanded.Mask!, 32, 30));
        Assert.Equal(0, MaskAt(expanded.Mask!, 63, 28));
        Assert.Equal(255, MaskAt(expanded.Mask!, 40, 27));
        Assert.Equal(0, MaskAt(expanded.Mask!, 40, 36));
        Assert.Equal(255, MaskAt(expanded.Mask!, 40, 37));
        // Latent mask inset by blur / 2 = 2: x 26..64, y 22..42.
        Assert.Equal(255, MaskAt(expanded.LatentMask!, 25, 30));
        Assert.Equal(0, MaskAt(expanded.LatentMask!, 26, 30));
        Assert.Equal(0, MaskAt(expanded.LatentMask!, 40, 42));
        Assert.Equal(255, MaskAt(expanded.LatentMask!, 40, 43));
        // A direction where neither side grows still rounds up: the extra goes to the bottom.
        var wide = GenerationService.Normalize(request with { Outpaint = new OutpaintBorders(8, 8, 0, 0) });
        Assert.Equal((64, 64), (wide.Width, wide.Height));
        Assert.Equal(0, MaskAt(wide.Mask!, 30, 0));
        Assert.Equal(255, MaskAt(wide.Mask!, 30, 63));
    }

    [Fact]
    public void OutpaintingInpaintsEachTileThatReachesPastTheImageAndCombinesThem()
    {
        // 48x64 grown 16 to the left: canvas 64x64, 32x64 tiles overlapping by 16 at x = 0, 16, 32 (split_grid).
        // Only the first reaches past the image; the others are the canvas as it is.
        var image = Gradient(48, 64);
        var request = GenerationService.Normalize(new GenerationRequest
        {
            Prompt = "a cat", Steps = 3, Sampler = "Euler", Seed = 5, Width = 32, Height = 64,
            InitImage = image, ImageSize = (48, 64), MaskBlur = 4, Outpaint = new OutpaintBorders(16, 0, 0, 0), InpaintFill = InpaintFill.Fill,
        });
        Assert.Equal(new OutpaintTiles(64, 64, 16, 0, 0, 0, 16), request.OutpaintTiles);
        using var model = LoadTinySd1();
        using var result = ImageGenerator.Generate(model, request);
        Assert.Equal((64, 64), (result.Width, result.Height));
        using var tile = ImageGenerator.Generate(model, Outpainting.TileRequest(request, 0, 0, 5));
        var combined = new RgbImage(64, 64, result.Images[0]);
        var job = new RgbImage(32, 64, tile.Images[0]);
        for (int y = 0; y < 64; y++)
        {
            for (int x = 0; x < 64; x++)
            {
                var got = combined.Pixels.AsSpan((y * 64 + x) * 3, 3).ToArray();
                if (x < 16) Assert.Equal(job.Pixels.AsSpan((y * 32 + x) * 3, 3).ToArray(), got); // the job's tile before the overlap
                else if (x >= 32) Assert.Equal(image.AsSpan((y * 48 + x - 16) * 3, 3).ToArray(), got); // untouched tiles: the original
            }
        }
        Assert.NotEqual(0, combined.Pixels.Take(16 * 3).Max(v => (int)v)); // the border was painted, not left black
    }

    [Fact]
    public void CommandLineOutpaintsAndInpaintsOnlyTheMaskedAreaWithA1111sFields()
    {
        using var dir = new TempDir();
        var imagePath = dir.File("in.png");
        PngEncoder.Save(imagePath, Gradient(48, 40), 48, 40);
        var maskPath = dir.File("mask.png");
        var mask = new byte[48 * 40 * 3];
        for (int y = 10; y < 20; y++)
            for (int x = 20; x < 30; x++) mask[(y * 48 + x) * 3] = mask[(y * 48 + x) * 3 + 1] = mask[(y * 48 + x) * 3 + 2] = 255;
        PngEncoder.Save(maskPath, mask, 48, 40);
        string[] common = ["generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--prompt", "a cat", "--steps", "3", "--sampler", "Euler", "--seed", "3", "--init-image", imagePath];

        var onlyMasked = dir.File("only.png");
        var (code, _, stderr) = CliHarness.Run([.. common, "--width", "32", "--height", "32", "--mask", maskPath, "--inpaint-full-res", "--inpaint-padding", "4",
            "--inpaint-fill", "latent-nothing", "--out", onlyMasked]);
        Assert.True(code == 0, stderr);
        using (var bitmap = SKBitmap.Decode(onlyMasked)) Assert.Equal((48, 40), (bitmap.Width, bitmap.Height));
        var parameters = PngTextChunks.Get(PngTextChunks.Read(onlyMasked), "parameters");
        Assert.Contains("Size: 32x32", parameters);
        Assert.EndsWith("Mask blur: 4, Inpaint area: Only masked, Masked area padding: 4, Masked content: latent nothing", parameters);

        var outpainted = dir.File("outpaint.png");
        (code, _, stderr) = CliHarness.Run([.. common, "--outpaint", "8,8,0,12", "--out", outpainted]);
        Assert.True(code == 0, stderr);
        using (var bitmap = SKBitmap.Decode(outpainted)) Assert.Equal((64, 64), (bitmap.Width, bitmap.Height));
        parameters = PngTextChunks.Get(PngTextChunks.Read(outpainted), "parameters");
        Assert.Contains("Size: 64x64", parameters);
        Assert.EndsWith("Mask blur: 8, Masked content: fill", parameters);
    }

    [Theory]
    [InlineData("--outpaint", "8,8", "--outpaint 8,8: expected left,right,up,down")]
    [InlineData("--outpaint", "0,0,0,0", "at least one side must grow")]
    [InlineData("--inpaint-full-res", null, "--inpaint-full-res needs --mask")]
    public void BadOptionsAreOneLineAndExitTwo(string option, string? value, string message)
    {
        using var dir = new TempDir();
        var imagePath = dir.File("in.png");
        PngEncoder.Save(imagePath, Gradient(16, 16), 16, 16);
        string[] args = ["generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--prompt", "x", "--width", "16", "--height", "16", "--init-image", imagePath, "--out", dir.File("o.png"), option];
        var (code, _, stderr) = CliHarness.Run(value == null ? args : [.. args, value]);
        Assert.Equal(2, code);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
