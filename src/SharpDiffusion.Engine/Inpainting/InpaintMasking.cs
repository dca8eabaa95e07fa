using SharpDiffusion.Engine.Upscaling;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Inpainting;

/// <summary>
/// A1111's inpainting mask arithmetic (StableDiffusionProcessingImg2Img.init/sample @ c8a5322d, Pillow's and
/// OpenCV's integer code), as pure functions: tests/data/golden/ext/README.md §1 lists each step. Masks are 8-bit,
/// one byte per pixel, row-major, 255 = repaint.
/// </summary>
public static class InpaintMasking
{
    /// <summary>Step 2: horizontal then vertical <c>cv2.GaussianBlur</c>, each rounded to 8 bits; blur 0 leaves the mask.</summary>
    public static byte[] BlurMask(byte[] mask, int width, int height, double blurX, double blurY)
    {
        var result = mask;
        if (blurX > 0) result = OpenCvGaussianBlur.Blur(result, width, height, OpenCvGaussianBlur.KernelSize(blurX), blurX, horizontal: true);
        if (blurY > 0) result = OpenCvGaussianBlur.Blur(result, width, height, OpenCvGaussianBlur.KernelSize(blurY), blurY, horizontal: false);
        return ReferenceEquals(result, mask) ? (byte[])mask.Clone() : result;
    }

    /// <summary>Step 3: <c>clip(float32(mask)·2, 0, 255)</c> as uint8 (the overlay mask when not "only masked").</summary>
    public static byte[] MaskForOverlay(byte[] blurredMask) => blurredMask.Select(v => (byte)Math.Min(255, v * 2)).ToArray();

    /// <summary>
    /// Step 5: the overlay, RGBA (4 bytes per pixel): Pillow's paste of the image into a blank RGBa canvas through
    /// <c>255 − overlayMask</c> (colour premultiplied: DIV255(c·m), alpha m), then RGBa → RGBA (c' kept where alpha is 0
    /// or 255, else min(255, 255·c' / alpha) in integers).
    /// </summary>
    public static byte[] Overlay(RgbImage image, byte[] overlayMask)
    {
        int n = image.Width * image.Height;
        if (overlayMask.Length != n) throw new ArgumentException($"overlay mask of {overlayMask.Length} pixels for a {image.Width}x{image.Height} image");
        var rgba = new byte[n * 4];
        for (int i = 0; i < n; i++)
        {
            int alpha = 255 - overlayMask[i];
            for (int c = 0; c < 3; c++)
            {
                int premultiplied = RgbImage.Div255(image.Pixels[i * 3 + c] * alpha);
                rgba[i * 4 + c] = (byte)(alpha is 0 or 255 ? premultiplied : Math.Min(255, 255 * premultiplied / alpha));
            }
            rgba[i * 4 + 3] = (byte)alpha;
        }
        return rgba;
    }

    /// <summary>
    /// Step 17: the decoded image with the overlay composited over it (Pillow's <c>alpha_composite</c> onto an opaque
    /// image, AlphaComposite.c's 7-bit integer arithmetic), back to RGB: the original pixels outside the mask.
    /// </summary>
    public static RgbImage ApplyOverlay(RgbImage decoded, byte[] overlayRgba)
    {
        int n = decoded.Width * decoded.Height;
        if (overlayRgba.Length != n * 4) throw new ArgumentException($"overlay of {overlayRgba.Length / 4} pixels for a {decoded.Width}x{decoded.Height} image");
        var result = new RgbImage(decoded.Width, decoded.Height, (byte[])decoded.Pixels.Clone());
        for (int i = 0; i < n; i++)
        {
            int sa = overlayRgba[i * 4 + 3];
            if (sa == 0) continue;
            const int da = 255;
            int outa255 = sa * 255 + da * (255 - sa);
            int coef1 = sa * 255 * 255 * 128 / outa255;
            int coef2 = 255 * 128 - coef1;
            for (int c = 0; c < 3; c++)
            {
                int tmp = overlayRgba[i * 4 + c] * coef1 + decoded.Pixels[i * 3 + c] * coef2 + (128 << 7);
                result.Pixels[i * 3 + c] = (byte)((((tmp >> 8) + tmp) >> 8) >> 7);
            }
        }
        return result;
    }

    /// <summary>
    /// Steps 8-9: the latent mask: the blurred mask resized to the latent size with Pillow's BICUBIC (its default
    /// for the RGB copy A1111 makes), then <c>around(v / 255)</c>: <c>nmask</c> (1 = repaint) and <c>mask = 1 − nmask</c>
    /// (1 = keep), [channels, h, w] float32.
    /// </summary>
    public static (Tensor Mask, Tensor NMask) LatentMasks(byte[] blurredMask, int width, int height, int latentWidth, int latentHeight, int channels = 4)
    {
        var resized = width == latentWidth && height == latentHeight
            ? blurredMask
            : PillowResize.Resize(blurredMask, width, height, 1, latentWidth, latentHeight, PillowFilter.Bicubic);
        var rounded = resized.Select(v => (float)Math.Round(v / 255.0, MidpointRounding.ToEven)).ToArray();
        using var plane = tensor(rounded, new long[] { 1, latentHeight, latentWidth });
        var nmask = plane.repeat(channels, 1, 1);
        var mask = nmask.neg().add_(1.0);
        return (mask, nmask);
    }

    /// <summary>
    /// Step 10 (9-channel models): <c>mask_full = round(blurred / 255)</c> [1, 1, H, W], the masked image
    /// <c>src·(1 − mask_full·weight)</c> for src = image·2 − 1 in [-1, 1] (torch.lerp with inpainting_mask_weight), and
    /// <c>mask_latent</c> = mask_full resized to the latent size by nearest neighbour (src = floor(dst·H/h)).
    /// The conditioning is <c>cat([mask_latent, vae_sample(masked_image)], 1)</c>.
    /// </summary>
    public static (Tensor MaskFull, Tensor MaskedImage, Tensor MaskLatent) ImageConditioningInputs(Tensor imageMinus1To1, byte[] blurredMask,
        int latentWidth, int latentHeight, double maskWeight = 1.0)
    {
        long h = imageMinus1To1.shape[2], w = imageMinus1To1.shape[3];
        using var scope = NewDisposeScope();
        var maskFull = tensor(blurredMask.Select(v => (float)Math.Round(v / 255.0, MidpointRounding.ToEven)).ToArray(), new long[] { 1, 1, h, w });
        var src = imageMinus1To1.to(ScalarType.Float32);
        var target = src.mul(maskFull.neg().add(1.0));
        var masked = maskWeight == 1.0 ? target : src.lerp(target, maskWeight);
        var maskLatent = F.interpolate(maskFull, size: new long[] { latentHeight, latentWidth }, mode: InterpolationMode.Nearest);
        return (maskFull.MoveToOuterDisposeScope(), masked.MoveToOuterDisposeScope(), maskLatent.MoveToOuterDisposeScope());
    }

    /// <summary>A1111's blend after every step and after sampling: <c>x·nmask + init_latent·mask</c>.</summary>
    public static Tensor Blend(Tensor x, Tensor initLatent, Tensor mask, Tensor nmask)
    {
        using var scope = NewDisposeScope();
        return x.mul(nmask).add(initLatent.mul(mask)).MoveToOuterDisposeScope();
    }
}
