using System.Text.Json;
using SharpDiffusion.Engine.Inpainting;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Inpainting;

/// <summary>
/// A1111's inpainting mask arithmetic against tests/data/golden/ext/inpaint_golden (OpenCV, Pillow and A1111 run on
/// a 32x32 image): the 8-bit steps are exact (README §5), the float ones within 1e-6.
/// </summary>
public class InpaintMaskingTests
{
    private const string GoldenFile = "ext/inpaint_golden.safetensors";
    private const int Size = 32, Latent = 16;

    private static byte[] Bytes(GoldenTensors golden, string name) => golden.Floats(name).Select(v => (byte)v).ToArray();

    /// <summary>NCHW 0..255 floats to an RGB image.</summary>
    private static RgbImage Image(GoldenTensors golden, string name)
    {
        using var t = golden.Get(name);
        using var hwc = t[0].permute(1, 2, 0).contiguous();
        return new RgbImage((int)t.shape[3], (int)t.shape[2], hwc.data<float>().ToArray().Select(v => (byte)v).ToArray());
    }

    [Fact]
    public void FixedPointKernelIsOpenCvs()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(TestPaths.GoldenFile("ext/inpaint_golden.json")));
        var settings = json.RootElement.GetProperty("settings");
        var expected = settings.GetProperty("blur_kernels_fixed_point").GetProperty("x").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int size = OpenCvGaussianBlur.KernelSize(settings.GetProperty("mask_blur_x").GetDouble());
        Assert.Equal(settings.GetProperty("blur_kernel_sizes")[0].GetInt32(), size);
        Assert.Equal(expected, OpenCvGaussianBlur.FixedPointKernel(size, 4));
    }

    [Fact]
    public void MaskBlurOverlayMaskAndOverlayAreBitExact()
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        var mask = Bytes(golden, "input.mask_u8");
        var horizontal = OpenCvGaussianBlur.Blur(mask, Size, Size, 21, 4, horizontal: true);
        Assert.Equal(Bytes(golden, "pre.mask_blur_x_u8"), horizontal);
        var blurred = InpaintMasking.BlurMask(mask, Size, Size, 4, 4);
        Assert.Equal(Bytes(golden, "pre.mask_blurred_u8"), blurred);
        var overlayMask = InpaintMasking.MaskForOverlay(blurred);
        Assert.Equal(Bytes(golden, "pre.mask_for_overlay_u8"), overlayMask);

        var overlay = InpaintMasking.Overlay(Image(golden, "input.image_u8"), overlayMask);
        using var expected = golden.Get("pre.overlay_rgba_u8");
        using var hwc = expected[0].permute(1, 2, 0).contiguous();
        Assert.Equal(hwc.data<float>().ToArray().Select(v => (byte)v), overlay);
    }

    [Theory]
    [InlineData("run9")]
    [InlineData("run4")]
    public void FinalOverlayCompositeIsBitExact(string run)
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        var blurred = Bytes(golden, "pre.mask_blurred_u8");
        var overlay = InpaintMasking.Overlay(Image(golden, "input.image_u8"), InpaintMasking.MaskForOverlay(blurred));
        var output = InpaintMasking.ApplyOverlay(Image(golden, $"{run}.image_u8"), overlay);
        Assert.Equal(Image(golden, $"{run}.output_u8").Pixels, output.Pixels);
    }

    [Fact]
    public void LatentMasksAndTheFinalBlendMatch()
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var scope = NewDisposeScope();
        var (mask, nmask) = InpaintMasking.LatentMasks(Bytes(golden, "pre.mask_blurred_u8"), Size, Size, Latent, Latent);
        TensorAssert.MaxAbs(golden.Get("pre.mask"), mask, 0, "mask");
        TensorAssert.MaxAbs(golden.Get("pre.nmask"), nmask, 0, "nmask");
        foreach (var run in new[] { "run9", "run4" })
        {
            var latents = InpaintMasking.Blend(golden.Get($"{run}.samples"), golden.Get("pre.init_latent"), mask, nmask);
            TensorAssert.MaxAbs(golden.Get($"{run}.latents"), latents, 1e-6, run + " latents");
        }
    }

    [Fact]
    public void NineChannelConditioningInputsMatch()
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var scope = NewDisposeScope();
        var src = golden.Get("pre.image").mul(2).sub(1);
        var (maskFull, masked, maskLatent) = InpaintMasking.ImageConditioningInputs(src, Bytes(golden, "pre.mask_blurred_u8"), Latent, Latent);
        TensorAssert.MaxAbs(golden.Get("cond9.mask_full"), maskFull, 0, "mask_full");
        TensorAssert.MaxAbs(golden.Get("cond9.masked_image"), masked, 1e-6, "masked image");
        TensorAssert.MaxAbs(golden.Get("cond9.mask_latent"), maskLatent, 0, "mask_latent");
        // c_concat = cat([mask_latent, masked latent]): the golden's own masked-image latent completes it.
        var conditioning = cat(new[] { maskLatent, golden.Get("cond9.masked_image_latent") }, 1);
        TensorAssert.MaxAbs(golden.Get("cond9.image_conditioning"), conditioning, 0, "image conditioning");
    }

    /// <summary>The 9-channel inpainting U-Net (in_channels 9 detected from input_blocks.0.0) loads strictly and reproduces unet9.out.</summary>
    [Fact]
    public void NineChannelUNetLoadsAndMatches()
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var checkpoint = SafetensorsFile.Open(TestPaths.GoldenFile("ext/tiny_sd1_inpaint.safetensors"));
        var sd1 = UNetConfig.FromLdmConfig(LdmConfigFile.Load(TestPaths.GoldenFile("tiny_sd1.config.json")));
        var config = UNetConfig.DetectFromWeights(checkpoint, "model.diffusion_model.", sd1.NumHeads, sd1.NumHeadChannels);
        Assert.Equal(9, config.InChannels);
        Assert.Equal(4, config.OutChannels);
        using var unet = new UNetModel(config);
        StrictLoader.Load(unet, checkpoint, "model.diffusion_model.");
        using var scope = NewDisposeScope();
        var output = unet.Forward(golden.Get("unet9.x"), golden.Get("unet9.t"), golden.Get("unet9.context"));
        TensorAssert.MaxAbs(golden.Get("unet9.out"), output, 1e-4, "unet9");
    }
}
