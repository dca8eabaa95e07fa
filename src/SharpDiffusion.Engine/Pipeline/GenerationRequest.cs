using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>One txt2img/img2img job with A1111's parameters and defaults.</summary>
public sealed record GenerationRequest
{
    public string Prompt { get; init; } = "";
    public string NegativePrompt { get; init; } = "";
    public int Steps { get; init; } = 20;

    /// <summary>A1111 display name or snake_case alias ("Euler a", "dpmpp_2m").</summary>
    public string Sampler { get; init; } = "Euler a";

    /// <summary>null: the sampler's own default (A1111 "Automatic").</summary>
    public ScheduleType? Schedule { get; init; }

    public double CfgScale { get; init; } = 7.0;
    public long Seed { get; init; }
    public NoiseSourceKind Rng { get; init; } = NoiseSourceKind.Cpu;
    public int Width { get; init; } = 512;
    public int Height { get; init; } = 512;
    public int BatchSize { get; init; } = 1;

    /// <summary>A1111 "Clip skip" (SD1 only; SD2/SDXL use their fixed layers).</summary>
    public int ClipSkip { get; init; } = 1;

    /// <summary>img2img: RGB bytes (row-major, 3 per pixel) of <see cref="Width"/> x <see cref="Height"/>, already resized.</summary>
    public byte[]? InitImage { get; init; }

    /// <summary>img2img denoising strength (A1111 default 0.75).</summary>
    public double Strength { get; init; } = 0.75;

    /// <summary>Ancestral samplers' eta (A1111 default 1).</summary>
    public double Eta { get; init; } = 1.0;

    /// <summary>
    /// A1111's sigma quirks (DPM2 drops the next-to-last sigma, DDIM's 1.6+ loop); off gives plain k-diffusion/CompVis,
    /// as the goldens use.
    /// </summary>
    public bool A1111SigmaQuirks { get; init; } = true;

    /// <summary>SDXL size conditioning; default as A1111: original and target size = the image size, no crop.</summary>
    public Text.Conditioners.ImageSizeConditioning? SizeConditioning { get; init; }

    /// <summary>
    /// Inpainting: the mask, one byte per pixel of <see cref="Width"/> x <see cref="Height"/> (row-major, 255 = repaint;
    /// A1111's <c>convert('L')</c> of the mask image), already resized; needs <see cref="InitImage"/>.
    /// </summary>
    public byte[]? Mask { get; init; }

    /// <summary>A1111 "Mask blur" (Gaussian sigma in pixels, both directions; default 4).</summary>
    public double MaskBlur { get; init; } = 4;

    /// <summary>A1111's mask_blur_y when it differs from the horizontal blur (<see cref="MaskBlur"/>); null: the same.</summary>
    public double? MaskBlurY { get; init; }

    /// <summary>A1111 "Mask mode: Inpaint not masked": repaint where the mask is black.</summary>
    public bool MaskInvert { get; init; }

    /// <summary>A1111 "Masked content".</summary>
    public InpaintFill InpaintFill { get; init; } = InpaintFill.Original;

    /// <summary>
    /// A1111 "Inpaint area: Only masked" (<c>inpaint_full_res</c>): the mask's bounding box plus
    /// <see cref="InpaintFullResPadding"/>, widened to the job's aspect ratio, is cut out, generated at
    /// <see cref="Width"/> x <see cref="Height"/> and pasted back into the image, which keeps its own size
    /// (<see cref="ImageSize"/>).
    /// </summary>
    public bool InpaintFullRes { get; init; }

    /// <summary>A1111 "Only masked padding, pixels" (default 32).</summary>
    public int InpaintFullResPadding { get; init; } = 32;

    /// <summary>
    /// The size of <see cref="InitImage"/> and <see cref="Mask"/> when they keep their own size ("only masked",
    /// outpainting before <see cref="Generation.GenerationService.Normalize"/> expands it); null: Width x Height.
    /// </summary>
    public (int Width, int Height)? ImageSize { get; init; }

    /// <summary>
    /// A1111's <c>p.latent_mask</c>: a separate mask (Width x Height, 255 = repaint, not blurred) for the "fill"
    /// content and the latent blend, while <see cref="Mask"/> still gives the overlay; null: the blurred mask.
    /// Outpainting sets it.
    /// </summary>
    public byte[]? LatentMask { get; init; }

    /// <summary>
    /// Outpainting (A1111's "Poor man's outpainting"): pixels added on each side of <see cref="InitImage"/> (of
    /// <see cref="ImageSize"/>); <see cref="Generation.GenerationService.Normalize"/> turns the request into inpainting
    /// jobs on the enlarged canvas, one per <see cref="Width"/> x <see cref="Height"/> tile that reaches past the image.
    /// </summary>
    public Inpainting.OutpaintBorders? Outpaint { get; init; }

    /// <summary>Set by <see cref="Generation.GenerationService.Normalize"/> from <see cref="Outpaint"/>: the canvas's tiling.</summary>
    public Inpainting.OutpaintTiles? OutpaintTiles { get; init; }

    /// <summary>A1111 "Inpainting conditioning mask strength" (9-channel models; default 1).</summary>
    public double InpaintingMaskWeight { get; init; } = 1.0;

    /// <summary>
    /// null: img2img/inpainting latents are the VAE posterior's mean (deterministic). A value: the posterior is sampled
    /// as A1111 does (<c>mean + std·randn</c>), with torch's CPU generator seeded with this value for the init image and
    /// with value + 1 for the masked image of inpainting models (A1111 draws from its unseeded global generator).
    /// </summary>
    public long? VaeSampleSeed { get; init; }

    /// <summary>ControlNet units, applied together (their residuals summed); empty: none.</summary>
    public IReadOnlyList<ControlNet.ControlUnit> Control { get; init; } = [];

    /// <summary>A1111's img2img resize mode: how an init image (and its mask) of another shape becomes the output size.</summary>
    public InitResizeMode ResizeMode { get; init; } = InitResizeMode.JustResize;

    /// <summary>A1111 "Hires. fix" upscale factor (txt2img only); null: no second pass.</summary>
    public double? HiresScale { get; init; }

    /// <summary>
    /// "Latent" (bilinear), "Latent (nearest)", or a pixel upscaler (decode, upscale, encode, as A1111's
    /// <c>resize_image</c>): "None" (Pillow Lanczos to the size), "Lanczos", "Nearest" or the name of the ESRGAN
    /// model at <see cref="HiresUpscalerPath"/> (each A1111's <c>Upscaler.upscale</c>, then Lanczos to the size).
    /// </summary>
    public string HiresUpscaler { get; init; } = "Latent";

    /// <summary>
    /// A1111's <c>refiner_switch_at</c>: the share of the model's timesteps after which the refiner (a second checkpoint
    /// the caller passes with the job) takes over; 1 never switches.
    /// </summary>
    public double RefinerSwitchAt { get; init; } = 0.8;

    /// <summary>The hires. fix upscalers that need no file (A1111's latent modes and its built-in pixel upscalers).</summary>
    public static IReadOnlyList<string> BuiltInHiresUpscalers { get; } = ["Latent", "Latent (nearest)", "Lanczos", "Nearest", "None"];

    /// <summary>An ESRGAN/Real-ESRGAN file for the hires. fix upscale (decode, model, Lanczos to the size, encode); null: none.</summary>
    public string? HiresUpscalerPath { get; init; }

    /// <summary>A1111's hr_sampler_name: the second pass's sampler; null: <see cref="Sampler"/>.</summary>
    public string? HiresSampler { get; init; }

    /// <summary>A1111's hr_scheduler: the second pass's schedule; null: the hires sampler's implied one, else <see cref="Schedule"/>.</summary>
    public ScheduleType? HiresSchedule { get; init; }

    /// <summary>
    /// A1111's hr_prompt: the second pass's prompt; null: <see cref="Prompt"/>. Its extra-network tags must be the
    /// prompt's (A1111 would switch networks between the passes; the engine keeps one set per job).
    /// </summary>
    public string? HiresPrompt { get; init; }

    /// <summary>A1111's hr_negative_prompt: the second pass's negative prompt; null: <see cref="NegativePrompt"/>.</summary>
    public string? HiresNegativePrompt { get; init; }

    /// <summary>Second-pass steps; null: <see cref="Steps"/> (A1111's 0).</summary>
    public int? HiresSteps { get; init; }

    /// <summary>Second-pass denoising strength (A1111 default 0.7).</summary>
    public double HiresDenoise { get; init; } = 0.7;

    /// <summary>
    /// A TAESD decoder file for the final decode instead of the VAE (A1111 "VAE type for decode: TAESD"; infotext
    /// <c>VAE Decoder: TAESD</c>); null: the VAE. Intermediate decodes (hires. fix with Lanczos) keep the VAE.
    /// </summary>
    public string? TaesdDecoderPath { get; init; }

    /// <summary>
    /// A1111's hr_resize_x / hr_resize_y: the second pass's size instead of <see cref="HiresScale"/> (a 0 side follows
    /// the other and the first pass's aspect ratio); with both sides and another aspect ratio the first pass is
    /// upscaled to cover the size and the latents are cut to it (A1111's truncate_x/y). Null: the scale.
    /// </summary>
    public (int Width, int Height)? HiresResize { get; init; }

    /// <summary>A hires. fix second pass is asked for (a scale or a resize).</summary>
    public bool HiresEnabled => HiresScale != null || HiresResize != null;

    /// <summary>
    /// A1111's <c>calculate_target_resolution</c>: the size the first pass is upscaled to (<c>hr_upscale_to_x/y</c>),
    /// <c>int(size · scale)</c> for a scale; and the latent cells cut off across each axis (<c>truncate_x/y</c>, half
    /// before, half after; A1111's opt_f is the model's latent factor here).
    /// </summary>
    public (int Width, int Height, int CutX, int CutY) HiresUpscale(int latentFactor)
    {
        if (HiresResize is not { } resize || (resize.Width == 0 && resize.Height == 0))
            return HiresScale is { } s ? ((int)(Width * s), (int)(Height * s), 0, 0) : (Width, Height, 0, 0);
        if (resize.Height == 0) return (resize.Width, resize.Width * Height / Width, 0, 0);
        if (resize.Width == 0) return (resize.Height * Width / Height, resize.Height, 0, 0);
        (int toX, int toY) = (double)Width / Height < (double)resize.Width / resize.Height
            ? (resize.Width, resize.Width * Height / Width)
            : (resize.Height * Width / Height, resize.Height);
        return (toX, toY, (toX - resize.Width) / latentFactor, (toY - resize.Height) / latentFactor);
    }

    /// <summary>The second pass's (final) size: the upscale size less the cut latent cells.</summary>
    public (int Width, int Height) HiresSize(int latentFactor)
    {
        var (w, h, cutX, cutY) = HiresUpscale(latentFactor);
        return ((w / latentFactor - cutX) * latentFactor, (h / latentFactor - cutY) * latentFactor);
    }
}

/// <summary>A1111's img2img resize modes.</summary>
public enum InitResizeMode
{
    /// <summary>Stretched to the size.</summary>
    JustResize = 0,
    /// <summary>Scaled to cover the size, centred, the excess cut off.</summary>
    CropAndResize = 1,
    /// <summary>Scaled to fit inside, centred, the bands filled with the stretched edge rows or columns.</summary>
    ResizeAndFill = 2,
    /// <summary>
    /// "Just resize (latent upscale)": the image encoded at its own size (<see cref="GenerationRequest.ImageSize"/>),
    /// its latents stretched to the output's with bilinear interpolation (A1111's img2img init for resize_mode 3).
    /// </summary>
    LatentUpscale = 3,
}

/// <summary>A1111's inpainting "Masked content" choices.</summary>
public enum InpaintFill
{
    /// <summary>fill: the masked area is filled with the image's blurred colours before encoding.</summary>
    Fill = 0,

    /// <summary>original: the image is encoded as it is.</summary>
    Original = 1,

    /// <summary>latent noise: the masked latents are replaced by the seed's noise.</summary>
    LatentNoise = 2,

    /// <summary>latent nothing: the masked latents are zeroed.</summary>
    LatentNothing = 3,
}
