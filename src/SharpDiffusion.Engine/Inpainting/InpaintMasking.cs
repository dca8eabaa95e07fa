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
        var canvas = new byte[n * 4];
        for (int i = 0; i < n; i++)
        {
            canvas[i * 4] = decoded.Pixels[i * 3];
            canvas[i * 4 + 1] = decoded.Pixels[i * 3 + 1];
            canvas[i * 4 + 2] = decoded.Pixels[i * 3 + 2];
            canvas[i * 4 + 3] = 255;
        }
        AlphaComposite(canvas, overlayRgba);
        return new RgbImage(decoded.Width, decoded.Height, DropAlpha(canvas));
    }

    /// <summary>
    /// Pillow's <c>Image.alpha_composite</c> of <paramref name="sourceRgba"/> over <paramref name="destinationRgba"/>
    /// (same size, RGBA bytes), in place: where the source alpha is 0 the destination stays; else, in 7-bit fixed point,
    /// <c>outa255 = sa·255 + da·(255 − sa)</c>, <c>coef1 = sa·255·255·128 / outa255</c>, colour
    /// <c>SHIFTFORDIV255(src·coef1 + dst·(255·128 − coef1) + (128 &lt;&lt; 7)) &gt;&gt; 7</c>, alpha <c>SHIFTFORDIV255(outa255 + 128)</c>.
    /// </summary>
    public static void AlphaComposite(byte[] destinationRgba, byte[] sourceRgba)
    {
        if (destinationRgba.Length != sourceRgba.Length) throw new ArgumentException($"alpha composite of {sourceRgba.Length / 4} pixels onto {destinationRgba.Length / 4}");
        static int ShiftForDiv255(int a) => ((a >> 8) + a) >> 8;
        for (int i = 0; i < destinationRgba.Length; i += 4)
        {
            int sa = sourceRgba[i + 3];
            if (sa == 0) continue;
            int da = destinationRgba[i + 3];
            int outa255 = sa * 255 + da * (255 - sa);
            int coef1 = sa * 255 * 255 * 128 / outa255;
            int coef2 = 255 * 128 - coef1;
            for (int c = 0; c < 3; c++)
                destinationRgba[i + c] = (byte)(ShiftForDiv255(sourceRgba[i + c] * coef1 + destinationRgba[i + c] * coef2 + (128 << 7)) >> 7);
            destinationRgba[i + 3] = (byte)ShiftForDiv255(outa255 + 128);
        }
    }

    /// <summary>
    /// A1111's "fill" masked content (masking.fill): the image with the masked part cut out (premultiplied RGBa,
    /// alpha 255 − mask), Gaussian-blurred with radii 256, 64, 16, 4, 2 and 0 (Pillow), each unpremultiplied and
    /// alpha-composited 1, 1, 2, 4, 2 and 1 times, in that order, onto a transparent canvas whose RGB is the result:
    /// the hole takes the colours around it, the unmasked pixels stay (the last layer is the image itself).
    /// </summary>
    public static RgbImage Fill(RgbImage image, byte[] mask)
    {
        int n = image.Width * image.Height;
        if (mask.Length != n) throw new ArgumentException($"fill mask of {mask.Length} pixels for a {image.Width}x{image.Height} image");
        var masked = new byte[n * 4];
        for (int i = 0; i < n; i++)
        {
            int alpha = 255 - mask[i];
            for (int c = 0; c < 3; c++) masked[i * 4 + c] = RgbImage.Div255(image.Pixels[i * 3 + c] * alpha);
            masked[i * 4 + 3] = (byte)alpha;
        }
        var canvas = new byte[n * 4];
        foreach (var (radius, repeats) in FillLayers)
        {
            var layer = Unpremultiply(PillowGaussianBlur.Blur(masked, image.Width, image.Height, 4, radius));
            for (int r = 0; r < repeats; r++) AlphaComposite(canvas, layer);
        }
        return new RgbImage(image.Width, image.Height, DropAlpha(canvas));
    }

    private static readonly (float Radius, int Repeats)[] FillLayers = [(256, 1), (64, 1), (16, 2), (4, 4), (2, 2), (0, 1)];

    /// <summary>Pillow's RGBa → RGBA: colour kept where alpha is 0 or 255, else min(255, 255·c / alpha) in integers.</summary>
    private static byte[] Unpremultiply(byte[] rgba)
    {
        for (int i = 0; i < rgba.Length; i += 4)
        {
            int alpha = rgba[i + 3];
            if (alpha is 0 or 255) continue;
            for (int c = 0; c < 3; c++) rgba[i + c] = (byte)Math.Min(255, 255 * rgba[i + c] / alpha);
        }
        return rgba;
    }

    private static byte[] DropAlpha(byte[] rgba)
    {
        var rgb = new byte[rgba.Length / 4 * 3];
        for (int i = 0, j = 0; i < rgba.Length; i += 4, j += 3)
        {
            rgb[j] = rgba[i];
            rgb[j + 1] = rgba[i + 1];
            rgb[j + 2] = rgba[i + 2];
        }
        return rgb;
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

    /// <summary>
    /// The latent masked content: "latent noise" replaces the masked latents by each image's seed noise (draw #0 of
    /// seed + i from the job's noise source: A1111's <c>create_random_tensors(shape, seeds)</c>, the same draw the sampler
    /// starts from), "latent nothing" by zeros: <c>init·mask + noise·nmask</c> / <c>init·mask</c>. Other contents
    /// return <paramref name="initLatent"/> itself.
    /// </summary>
    public static Tensor FillLatent(Tensor initLatent, Tensor mask, Tensor nmask, Pipeline.InpaintFill fill, Random.NoiseSourceKind rng, long seed)
    {
        if (fill is not (Pipeline.InpaintFill.LatentNoise or Pipeline.InpaintFill.LatentNothing)) return initLatent;
        using var scope = NewDisposeScope();
        var kept = initLatent.mul(mask.to(initLatent.dtype, initLatent.device));
        if (fill == Pipeline.InpaintFill.LatentNoise)
        {
            using var sources = Random.BatchNoise.ForSeeds(rng, seed, (int)initLatent.shape[0]);
            var noise = sources.Next(initLatent.shape.AsSpan(1)).to(initLatent.dtype, initLatent.device);
            kept = kept.add(noise.mul(nmask.to(initLatent.dtype, initLatent.device)));
        }
        return kept.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// "Only masked" finish (A1111's uncrop + apply_overlay): the generated image "crop and resize"d to the region,
    /// pasted opaque at its place on a transparent canvas of the image's size, the overlay alpha-composited over it,
    /// RGB kept (black where neither covers, which the padding region rules out in practice).
    /// </summary>
    public static RgbImage PasteBack(RgbImage generated, CropRegion region, int imageWidth, int imageHeight, byte[] overlayRgba)
    {
        if (overlayRgba.Length != imageWidth * imageHeight * 4) throw new ArgumentException($"overlay of {overlayRgba.Length / 4} pixels for a {imageWidth}x{imageHeight} image");
        var resized = A1111ResizeImage.CropAndResize(generated.Pixels, generated.Width, generated.Height, 3, region.Width, region.Height);
        var canvas = new byte[imageWidth * imageHeight * 4];
        for (int y = 0; y < region.Height; y++)
            for (int x = 0; x < region.Width; x++)
            {
                int s = (y * region.Width + x) * 3, d = ((region.Y1 + y) * imageWidth + region.X1 + x) * 4;
                canvas[d] = resized[s];
                canvas[d + 1] = resized[s + 1];
                canvas[d + 2] = resized[s + 2];
                canvas[d + 3] = 255;
            }
        AlphaComposite(canvas, overlayRgba);
        return new RgbImage(imageWidth, imageHeight, DropAlpha(canvas));
    }

    /// <summary>A1111's blend after every step and after sampling: <c>x·nmask + init_latent·mask</c>.</summary>
    public static Tensor Blend(Tensor x, Tensor initLatent, Tensor mask, Tensor nmask)
    {
        using var scope = NewDisposeScope();
        return x.mul(nmask).add(initLatent.mul(mask)).MoveToOuterDisposeScope();
    }
}
