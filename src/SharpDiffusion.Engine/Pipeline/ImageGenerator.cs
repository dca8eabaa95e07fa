using SharpDiffusion.Engine.ControlNet;
using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Engine.Inpainting;
using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Text.Prompts;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using ITextConditioner = SharpDiffusion.Engine.Text.Conditioners.ITextConditioner;

namespace SharpDiffusion.Engine.Pipeline;

/// <summary>
/// txt2img and img2img as A1111 runs them: encode prompt and negative prompt, per-image seeds (seed + i), the
/// sampler loop with batched CFG, VAE decode, A1111's 8-bit conversion.
/// </summary>
public static class ImageGenerator
{
    /// <param name="cancellation">Checked at every step: a cancelled job throws <see cref="OperationCanceledException"/>.</param>
    /// <param name="control">
    /// <see cref="GenerationControl.Interrupt"/>/<see cref="GenerationControl.Skip"/>: sampling stops at the next step
    /// report and the images are decoded from that step's denoised prediction (A1111's <c>last_latent</c>); the result
    /// says <see cref="GenerationResult.Interrupted"/>.
    /// </param>
    /// <param name="refiner">
    /// A1111's refiner: a second checkpoint that takes over at <see cref="GenerationRequest.RefinerSwitchAt"/> of the
    /// model's timesteps (in the hires pass when there is one, A1111's default); its own text encoder re-encodes the
    /// prompts, and its VAE decodes once it has taken over. Null: none.
    /// </param>
    /// <param name="onControl">Told of every ControlNet evaluation (pass, step, hint size, residual weights).</param>
    public static GenerationResult Generate(StableDiffusionCheckpoint model, GenerationRequest request,
        Action<SamplerStep>? onStep = null, CancellationToken cancellation = default,
        Func<int, IPromptEmbeddingLookup?>? embeddingsForWidth = null, GenerationControl? control = null,
        StableDiffusionCheckpoint? refiner = null, Action<ControlApplication>? onControl = null)
    {
        if (request.OutpaintTiles != null) return OutpaintByTiles(model, request, onStep, cancellation, embeddingsForWidth, control, refiner);
        Validate(model, request);
        if (refiner != null) ValidateRefiner(model, refiner, request);
        // Loaded before sampling so that a wrong file fails the job before the work.
        using var taesd = request.TaesdDecoderPath is { } taesdPath ? LoadTaesdDecoder(taesdPath, model, request) : null;
        using var scope = NewDisposeScope();
        using var mode = inference_mode();

        var text = model.CreateTextConditioner(request.ClipSkip, embeddingsForWidth);
        var sizes = request.SizeConditioning ?? ImageSizeConditioning.ForImage(request.Height, request.Width);
        using var cond = text.Encode(new[] { request.Prompt }, isNegative: false, sizes);
        using var uncond = text.Encode(new[] { request.NegativePrompt }, isNegative: true, sizes);

        int factor = model.Vae.Config.DownsampleFactor;
        var latentShape = new long[] { model.LatentChannels, request.Height / factor, request.Width / factor };
        Tensor? initLatents = null;
        InpaintSetup? inpaint = null;
        var guidanceCond = cond;
        var guidanceUncond = uncond;
        if (request.Mask != null)
        {
            inpaint = PrepareInpainting(model, request, latentShape);
            initLatents = inpaint.Blend.InitLatent;
            if (inpaint.ImageConditioning is { } concat)
            {
                // Shares the text tensors (owned by cond/uncond): these wrappers are never disposed themselves.
                guidanceCond = new Conditioning(cond.CrossAttention, cond.Vector, concat);
                guidanceUncond = new Conditioning(uncond.CrossAttention, uncond.Vector, concat);
            }
        }
        else if (request.InitImage is { } rgb)
        {
            var (imageWidth, imageHeight) = request.ImageSize ?? (request.Width, request.Height);
            var image = RgbToTensor(rgb, imageWidth, imageHeight);
            initLatents = EncodeLatents(model, image, request.BatchSize, request.VaeSampleSeed);
            if (initLatents.shape[2] != latentShape[1] || initLatents.shape[3] != latentShape[2])
                initLatents = F.interpolate(initLatents, size: new[] { latentShape[1], latentShape[2] }, mode: InterpolationMode.Bilinear, align_corners: false);
        }

        var sampling = new SamplingRequest
        {
            Sampler = request.Sampler,
            Schedule = request.Schedule,
            Steps = request.Steps,
            Sdxl = model.Architecture.AlignYourStepsSdxl,
            CfgScale = request.CfgScale,
            Seed = request.Seed,
            BatchSize = request.BatchSize,
            Rng = request.Rng,
            LatentShape = latentShape,
            Eta = request.Eta,
            InitLatents = initLatents,
            DenoisingStrength = request.Strength,
            A1111SigmaQuirks = request.A1111SigmaQuirks,
            LatentMask = inpaint?.Blend,
        };
        // Without a hires pass the refiner joins this one. Its conditions are encoded up front (A1111 encodes them at
        // the switch: the same values).
        var refinerText = refiner != null && !request.HiresEnabled ? refiner.CreateTextConditioner(request.ClipSkip, embeddingsForWidth) : null;
        using var refinerCond = refinerText?.Encode(new[] { request.Prompt }, isNegative: false, sizes);
        using var refinerUncond = refinerText?.Encode(new[] { request.NegativePrompt }, isNegative: true, sizes);
        RefinerStage? refinerStage = null;
        if (refinerText != null)
        {
            refinerStage = new RefinerStage(refiner!.CreateDenoiser(), WithImageConditioning(refinerCond!, guidanceCond), WithImageConditioning(refinerUncond!, guidanceUncond), request.RefinerSwitchAt);
            sampling = sampling with { Refiner = refinerStage };
        }
        using var controlStack = LoadControlNets(model, request);
        var denoiser = model.CreateDenoiser(controlStack);
        if (controlStack != null)
        {
            if (onControl != null) controlStack.Applied += onControl;
            // The extension's step counter advances in the sampler callback, after each step.
            var outer = onStep;
            onStep = step =>
            {
                controlStack.CurrentStep = step.Index + 1;
                outer?.Invoke(step);
            };
        }
        Tensor latents;
        bool interrupted = false;
        if (control == null)
        {
            latents = SamplingRun.Run(denoiser, guidanceCond, guidanceUncond, sampling, onStep, cancellation);
        }
        else
        {
            Tensor? lastDenoised = null;
            void Step(SamplerStep step)
            {
                onStep?.Invoke(step);
                control.Observe(step);
                if (!control.StopRequested) return;
                // The step's tensors die with its dispose scope: keep a copy outside every scope, attached below.
                lastDenoised = step.Denoised.clone().DetachFromDisposeScope();
                throw new SamplingStopped();
            }
            try
            {
                latents = SamplingRun.Run(denoiser, guidanceCond, guidanceUncond, sampling, Step, cancellation);
            }
            catch (SamplingStopped)
            {
                latents = lastDenoised!;
                scope.Attach(latents);
                interrupted = true;
            }
        }

        if (inpaint != null)
        {
            // A1111 blends the samples once more after sampling, then puts the original pixels back outside the mask.
            latents = inpaint.Blend.Apply(latents);
        }
        int outWidth = inpaint?.ImageWidth ?? request.Width, outHeight = inpaint?.ImageHeight ?? request.Height;
        if (request.HiresEnabled && !interrupted)
        {
            (outWidth, outHeight) = request.HiresSize(model.Vae.Config.DownsampleFactor);
            RefinerHires? hiresRefiner = refiner == null ? null : new RefinerHires(refiner.CreateTextConditioner(request.ClipSkip, embeddingsForWidth), refiner.CreateDenoiser());
            latents = HiresPass(model, request, text, denoiser, controlStack, latents, onStep, cancellation, hiresRefiner);
            refinerStage = hiresRefiner?.Stage;
        }
        bool refined = refinerStage?.Switched == true;
        // A1111 decodes with whatever model is loaded at the end: the refiner's VAE once it took over.
        var images = taesd is null ? DecodeImages(refined ? refiner! : model, latents) : DecodeImages(taesd, latents);
        // TAESD always upsamples by 8 (the tiny test VAEs by less): the image is the size it decodes to, as in A1111.
        if (taesd != null) (outWidth, outHeight) = ((int)latents.shape[3] * Previews.Taesd.UpsampleFactor, (int)latents.shape[2] * Previews.Taesd.UpsampleFactor);
        if (inpaint != null)
        {
            for (int i = 0; i < images.Count; i++)
                images[i] = inpaint.Finish(images[i], request.Width, request.Height);
        }
        var seeds = Enumerable.Range(0, request.BatchSize).Select(i => request.Seed + i).ToArray();
        return new GenerationResult(images, outWidth, outHeight, seeds, latents.MoveToOuterDisposeScope()) { Interrupted = interrupted, Refined = refined };
    }

    /// <summary>
    /// A1111's poor man's outpainting after the canvas is built (<see cref="Outpainting.Expand"/>): <c>split_grid</c> of the
    /// canvas into job-sized tiles overlapping by the border width, one inpainting job per tile that reaches past the
    /// original image (seed, seed + 1, ... in grid order, as the script's <c>p.seed = processed.seed + 1</c>), the other
    /// tiles kept, and <c>combine_grid</c>'s 8-bit ramps over the overlaps. The latents are the first job's (A1111 keeps
    /// its infotext too).
    /// </summary>
    private static GenerationResult OutpaintByTiles(StableDiffusionCheckpoint model, GenerationRequest request, Action<SamplerStep>? onStep,
        CancellationToken cancellation, Func<int, IPromptEmbeddingLookup?>? embeddingsForWidth, GenerationControl? control, StableDiffusionCheckpoint? refiner)
    {
        var tiling = request.OutpaintTiles!;
        var canvas = new RgbImage(tiling.CanvasWidth, tiling.CanvasHeight, request.InitImage!);
        var (rows, cols) = TiledUpscaler.SplitGrid(tiling.CanvasWidth, tiling.CanvasHeight, request.Width, request.Height, tiling.Overlap);
        var tiles = new RgbImage[rows.Count, cols.Count];
        Tensor? latents = null;
        bool interrupted = false, refined = false;
        long seed = request.Seed;
        try
        {
            for (int r = 0; r < rows.Count; r++)
            {
                for (int c = 0; c < cols.Count; c++)
                {
                    int x = cols[c], y = rows[r];
                    if (interrupted || tiling.InsideImage(x, y, request.Width, request.Height))
                    {
                        tiles[r, c] = canvas.Crop(x, y, request.Width, request.Height);
                        continue;
                    }
                    using var result = Generate(model, Outpainting.TileRequest(request, x, y, seed++), onStep, cancellation, embeddingsForWidth, control, refiner);
                    tiles[r, c] = new RgbImage(request.Width, request.Height, result.Images[0]);
                    latents ??= result.Latents.clone().DetachFromDisposeScope();
                    refined |= result.Refined;
                    interrupted = result.Interrupted; // the remaining tiles stay as the canvas has them
                }
            }
            var combined = TiledUpscaler.CombineGrid(tiles, rows, cols, tiling.CanvasWidth, tiling.CanvasHeight, tiling.Overlap);
            return new GenerationResult([combined.Pixels], tiling.CanvasWidth, tiling.CanvasHeight, [request.Seed], latents!) { Interrupted = interrupted, Refined = refined };
        }
        catch
        {
            latents?.Dispose();
            throw;
        }
    }

    /// <summary>The refiner's text conditions with the first model's inpainting conditioning (mask and masked-image latent), when it has one.</summary>
    private static Conditioning WithImageConditioning(Conditioning refinerText, Conditioning firstModel) =>
        firstModel.ImageConditioning is { } concat ? new Conditioning(refinerText.CrossAttention, refinerText.Vector, concat) : refinerText;

    /// <summary>The refiner's parts for a hires pass: its conditions are encoded at the hires size, as A1111's hr conds.</summary>
    private sealed record RefinerHires(ITextConditioner Text, IDenoiser Denoiser)
    {
        public RefinerStage? Stage { get; set; }
    }

    private static void ValidateRefiner(StableDiffusionCheckpoint model, StableDiffusionCheckpoint refiner, GenerationRequest request)
    {
        string name = Path.GetFileName(refiner.Path);
        if (request.RefinerSwitchAt <= 0 || request.RefinerSwitchAt > 1) throw new ArgumentException($"refiner switch at {request.RefinerSwitchAt}: must be in (0, 1] (1 never switches)");
        if (refiner.LatentChannels != model.LatentChannels || refiner.Vae.Config.DownsampleFactor != model.Vae.Config.DownsampleFactor || refiner.Vae.Config.ScaleFactor != model.Vae.Config.ScaleFactor)
            throw new ArgumentException($"refiner {name} ({refiner.Architecture.DisplayName}): its latents are not those of this {model.Architecture.DisplayName} model");
        if (refiner.IsInpainting != model.IsInpainting)
            throw new ArgumentException($"refiner {name}: {(refiner.IsInpainting ? "an inpainting model after a plain one" : "a plain model after an inpainting one")} is not supported");
        if (request.Control.Count > 0) throw new ArgumentException("the refiner with ControlNet is not supported yet");
        var (sampler, _) = SamplerRegistry.Resolve(request.HiresEnabled ? request.HiresSampler ?? request.Sampler : request.Sampler, request.A1111SigmaQuirks);
        RefinerStage.CheckSampler(sampler, inpainting: request.Mask != null);
        int m = refiner.SizeMultiple;
        var (w, h) = request.HiresEnabled ? request.HiresSize(model.Vae.Config.DownsampleFactor) : (request.Width, request.Height);
        if (w % m != 0 || h % m != 0) throw new ArgumentException($"refiner {name}: size {w}x{h} is not supported by it: width and height must be multiples of {m}");
    }

    /// <summary>VAE-decodes latents [B, C, h, w] one image at a time into A1111's 8-bit RGB (row-major HWC bytes).</summary>
    public static List<byte[]> DecodeImages(StableDiffusionCheckpoint model, Tensor latents)
    {
        var images = new List<byte[]>();
        for (int i = 0; i < latents.shape[0]; i++)
        {
            using var decoded = model.Vae.Decode(latents.narrow(0, i, 1));
            using var bytes = ImageConversion.ToUInt8(decoded).squeeze(0).permute(1, 2, 0).contiguous();
            images.Add(bytes.data<byte>().ToArray());
        }
        return images;
    }

    /// <summary>
    /// TAESD-decodes latents [B, 4, h, w] into A1111's 8-bit RGB (HWC bytes): A1111's <c>samples_to_images_tensor</c>
    /// with the TAESD approximation (<c>decoder(x)·2 − 1</c>), then the usual 8-bit conversion. Runs on the CPU in float32.
    /// </summary>
    public static List<byte[]> DecodeImages(Previews.Taesd decoder, Tensor latents)
    {
        var images = new List<byte[]>();
        for (int i = 0; i < latents.shape[0]; i++)
        {
            using var scope = NewDisposeScope();
            var decoded = decoder.Forward(latents.narrow(0, i, 1).cpu()) * 2 - 1;
            var bytes = ImageConversion.ToUInt8(decoded).squeeze(0).permute(1, 2, 0).contiguous();
            images.Add(bytes.data<byte>().ToArray());
        }
        return images;
    }

    private static Previews.Taesd LoadTaesdDecoder(string path, StableDiffusionCheckpoint model, GenerationRequest request)
    {
        if (request.Mask != null && model.Vae.Config.DownsampleFactor != Previews.Taesd.UpsampleFactor)
            throw new ArgumentException($"{path}: TAESD decodes to 8x the latent size, this model's VAE to {model.Vae.Config.DownsampleFactor}x: the inpainting overlay would not fit");
        var decoder = Previews.Taesd.Load(path);
        if (!decoder.IsDecoder || decoder.LatentChannels != model.LatentChannels)
        {
            var what = decoder.IsDecoder ? $"a TAESD decoder for {decoder.LatentChannels} latent channels" : "a TAESD encoder";
            decoder.Dispose();
            throw new ArgumentException($"{path}: {what}, the model needs a decoder for {model.LatentChannels} latent channels");
        }
        return decoder;
    }

    /// <summary>Unwinds the sampler loop when a job is interrupted or skipped (never leaves this class).</summary>
    private sealed class SamplingStopped : Exception;

    /// <summary>RGB bytes (HWC) to a [1, 3, H, W] float32 image in [-1, 1], as A1111 feeds the VAE encoder.</summary>
    public static Tensor RgbToTensor(byte[] rgb, int width, int height)
    {
        if (rgb.Length != width * height * 3)
            throw new ArgumentException($"init image has {rgb.Length} bytes, {width}x{height} RGB needs {width * height * 3}");
        using var scope = NewDisposeScope();
        var t = tensor(rgb).reshape(height, width, 3).permute(2, 0, 1).unsqueeze(0).to(ScalarType.Float32);
        return t.div(127.5).sub(1.0).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A1111's hires. fix second pass (StableDiffusionProcessingTxt2Img.sample_hr_pass): the first pass's latents
    /// upscaled (latent interpolation, bilinear without antialias or nearest; or decode → 8-bit → Pillow Lanczos →
    /// encode), then img2img at the new size with the hires steps and denoising strength, fresh noise from the same
    /// seeds (draw #0 at the new shape), the prompts (or the hires prompts) re-encoded for the new size (SDXL's size conditioning).
    /// ControlNets switch to their hires hints with the step counter restarted over this pass (sd-webui-controlnet).
    /// </summary>
    private static Tensor HiresPass(StableDiffusionCheckpoint model, GenerationRequest request, ITextConditioner text, IDenoiser denoiser,
        ControlStack? controlStack, Tensor latents, Action<SamplerStep>? onStep, CancellationToken cancellation, RefinerHires? refiner = null)
    {
        int factor = model.Vae.Config.DownsampleFactor;
        var (width, height, cutX, cutY) = request.HiresUpscale(factor);
        var shape = new long[] { model.LatentChannels, height / factor, width / factor };
        Tensor upscaled;
        switch (request.HiresUpscaler)
        {
            case "Latent":
                upscaled = F.interpolate(latents, size: new[] { shape[1], shape[2] }, mode: InterpolationMode.Bilinear, align_corners: false);
                break;
            case "Latent (nearest)":
                upscaled = F.interpolate(latents, size: new[] { shape[1], shape[2] }, mode: InterpolationMode.Nearest);
                break;
            default: // Lanczos, Nearest, None or an upscaler model (validated)
            {
                var rows = new List<Tensor>();
                using var upscaler = request.HiresUpscalerPath == null ? null : UpscalerModel.Load(request.HiresUpscalerPath);
                foreach (var rgb in DecodeImages(model, latents))
                {
                    var resized = HiresImageResize(new RgbImage(request.Width, request.Height, rgb), width, height, request.HiresUpscaler, upscaler);
                    var image = tensor(resized.Pixels).reshape(height, width, 3).permute(2, 0, 1).unsqueeze(0)
                        .to(ScalarType.Float32).div(255.0).mul(2).sub(1);
                    rows.Add(EncodeLatents(model, image, 1, request.VaeSampleSeed));
                }
                upscaled = cat(rows, 0);
                break;
            }
        }
        if (cutX > 0 || cutY > 0)
        {
            // A1111: samples[:, :, ty//2 : h-(ty+1)//2, tx//2 : w-(tx+1)//2], then the noise at the cut shape.
            shape = [shape[0], shape[1] - cutY, shape[2] - cutX];
            upscaled = upscaled.narrow(2, cutY / 2, shape[1]).narrow(3, cutX / 2, shape[2]).contiguous();
        }
        var sizes = request.SizeConditioning ?? ImageSizeConditioning.ForImage(height, width);
        using var cond = text.Encode(new[] { request.HiresPrompt ?? request.Prompt }, isNegative: false, sizes);
        using var uncond = text.Encode(new[] { request.HiresNegativePrompt ?? request.NegativePrompt }, isNegative: true, sizes);
        var sampling = new SamplingRequest
        {
            Sampler = request.HiresSampler ?? request.Sampler,
            Schedule = request.HiresSchedule ?? request.Schedule,
            Steps = request.HiresSteps ?? request.Steps,
            Sdxl = model.Architecture.AlignYourStepsSdxl,
            CfgScale = request.CfgScale,
            Seed = request.Seed,
            BatchSize = request.BatchSize,
            Rng = request.Rng,
            LatentShape = shape,
            Eta = request.Eta,
            InitLatents = upscaled,
            DenoisingStrength = request.HiresDenoise,
            Img2ImgStepsRequested = true, // A1111 passes hr_second_pass_steps (or steps): exactly that many run
            A1111SigmaQuirks = request.A1111SigmaQuirks,
        };
        controlStack?.BeginHiresPass(Img2ImgSchedule.Plan(sampling.Steps, sampling.DenoisingStrength, sampling.Img2ImgStepsRequested).SamplingSteps);
        if (refiner == null) return SamplingRun.Run(denoiser, cond, uncond, sampling, onStep, cancellation);
        using var refinerCond = refiner.Text.Encode(new[] { request.HiresPrompt ?? request.Prompt }, isNegative: false, sizes);
        using var refinerUncond = refiner.Text.Encode(new[] { request.HiresNegativePrompt ?? request.NegativePrompt }, isNegative: true, sizes);
        refiner.Stage = new RefinerStage(refiner.Denoiser, refinerCond, refinerUncond, request.RefinerSwitchAt);
        return SamplingRun.Run(denoiser, cond, uncond, sampling with { Refiner = refiner.Stage }, onStep, cancellation);
    }

    /// <summary>
    /// A1111's <c>images.resize_image(0, image, w, h, upscaler_name)</c> for the hires pass: "None" is Pillow's Lanczos
    /// to the size; any other upscaler (Lanczos, Nearest, a model) runs its <c>Upscaler.upscale</c> at the larger of the
    /// two ratios when that is above 1 (models tiled as A1111's ESRGAN_tile / ESRGAN_tile_overlap), then Lanczos makes the
    /// exact size when it differs.
    /// </summary>
    internal static RgbImage HiresImageResize(RgbImage image, int width, int height, string upscalerName, UpscalerModel? upscaler,
        int tileSize = TiledUpscaler.DefaultTileSize, int tileOverlap = TiledUpscaler.DefaultTileOverlap)
    {
        double scale = Math.Max(width / (double)image.Width, height / (double)image.Height);
        if (upscalerName != "None" && scale > 1.0)
        {
            image = upscaler != null ? ModelUpscale.Upscale(upscaler, image, scale, tileSize, tileOverlap)
                : ExtrasUpscale.Upscale(image, new ExtrasUpscaler(upscalerName), scale);
        }
        if (image.Width != width || image.Height != height) image = PillowResize.Resize(image, width, height, PillowFilter.Lanczos);
        return image;
    }

    /// <summary>
    /// Loads the request's ControlNets for this model (its dtype and device) with their maps fitted to the image, and
    /// for hires. fix separately to the second pass's size (the extension's <c>hr_hint</c>); null when there are none.
    /// The guidance window counts over A1111's <c>state.sampling_steps</c>: the steps, or t_enc + 1 for img2img.
    /// </summary>
    private static ControlStack? LoadControlNets(StableDiffusionCheckpoint model, GenerationRequest request)
    {
        if (request.Control.Count == 0) return null;
        int steps = request.InitImage != null ? Img2ImgSchedule.Plan(request.Steps, request.Strength, stepsRequested: false).SamplingSteps : request.Steps;
        var stack = new ControlStack(steps);
        try
        {
            foreach (var unit in request.Control)
            {
                if (unit.GuidanceStart < 0 || unit.GuidanceEnd > 1 || unit.GuidanceStart > unit.GuidanceEnd)
                    throw new ArgumentException($"{unit.ModelPath}: guidance window {unit.GuidanceStart}..{unit.GuidanceEnd} must satisfy 0 <= start <= end <= 1");
                var hint = unit.HintFor(request.Width, request.Height);
                var (hiresWidth, hiresHeight) = request.HiresEnabled ? request.HiresSize(model.Vae.Config.DownsampleFactor) : (0, 0);
                var hiresHint = request.HiresEnabled ? unit.HintFor(hiresWidth, hiresHeight) : null;
                stack.Add(ControlNetLoader.Load(unit.ModelPath, model.UNet.Config, model.UNet.DType, model.UNet.parameters().First().device), unit,
                    hint, request.Width, request.Height, hiresHint, hiresWidth, hiresHeight);
            }
            return stack;
        }
        catch
        {
            stack.Dispose();
            throw;
        }
    }

    /// <summary>
    /// What inpainting adds to a job: the latent-mask blend (with the init latents), the overlay, the 9-channel
    /// conditioning, and for "only masked" the region the generated image is pasted back into (at the image's size).
    /// </summary>
    private sealed record InpaintSetup(LatentMaskBlend Blend, byte[] OverlayRgba, Tensor? ImageConditioning, CropRegion? PasteTo, int ImageWidth, int ImageHeight)
    {
        /// <summary>A decoded image (the job's size) finished as A1111's apply_overlay: pasted back (only masked), original pixels over it outside the mask.</summary>
        public byte[] Finish(byte[] decoded, int width, int height) => PasteTo is { } region
            ? InpaintMasking.PasteBack(new RgbImage(width, height, decoded), region, ImageWidth, ImageHeight, OverlayRgba).Pixels
            : InpaintMasking.ApplyOverlay(new RgbImage(width, height, decoded), OverlayRgba).Pixels;
    }

    /// <summary>
    /// A1111's img2img-inpaint init() (../shared/golden/ext/README.md §1): mask invert and blur, "only masked" crop,
    /// the overlay, the masked content (fill before encoding; latent noise / latent nothing after), the init latents,
    /// the latent masks and, for inpainting checkpoints, <c>cat(mask_latent, masked_image_latent)</c>.
    /// The tensors belong to the caller's dispose scope.
    /// </summary>
    private static InpaintSetup PrepareInpainting(StableDiffusionCheckpoint model, GenerationRequest request, long[] latentShape)
    {
        int width = request.Width, height = request.Height;
        var (imageWidth, imageHeight) = request.ImageSize ?? (width, height);
        int latentWidth = (int)latentShape[2], latentHeight = (int)latentShape[1];
        var mask = request.MaskInvert ? request.Mask!.Select(v => (byte)(255 - v)).ToArray() : request.Mask!;
        var blurred = InpaintMasking.BlurMask(mask, imageWidth, imageHeight, request.MaskBlur, request.MaskBlurY ?? request.MaskBlur);
        var source = new RgbImage(imageWidth, imageHeight, request.InitImage!);

        RgbImage image;
        byte[] imageMask, overlay;
        CropRegion? pasteTo = null;
        if (request.InpaintFullRes)
        {
            var bounds = InpaintArea.MaskBounds(blurred, imageWidth, imageHeight, request.InpaintFullResPadding)
                ?? throw new ArgumentException("the mask is blank: \"only masked\" inpainting has nothing to repaint");
            var region = InpaintArea.ExpandToAspect(bounds, width, height, imageWidth, imageHeight);
            // Here the overlay mask is the blurred mask itself (not doubled), and the crop is resized with "resize and fill".
            overlay = InpaintMasking.Overlay(source, blurred);
            imageMask = A1111ResizeImage.ResizeAndFill(InpaintArea.Crop(blurred, imageWidth, 1, region), region.Width, region.Height, 1, width, height);
            image = new RgbImage(width, height, A1111ResizeImage.ResizeAndFill(InpaintArea.Crop(source.Pixels, imageWidth, 3, region), region.Width, region.Height, 3, width, height));
            pasteTo = region;
        }
        else
        {
            imageMask = blurred;
            overlay = InpaintMasking.Overlay(source, InpaintMasking.MaskForOverlay(blurred));
            image = source;
        }
        var latentMask = request.LatentMask ?? imageMask;
        // A1111 fills the masked area from its surroundings for every content but "original", latent ones included.
        if (request.InpaintFill != InpaintFill.Original) image = InpaintMasking.Fill(image, latentMask);

        // A1111: image = uint8 / 255 (float32), encoded as image·2 − 1.
        var imageTensor = tensor(image.Pixels).reshape(height, width, 3).permute(2, 0, 1).unsqueeze(0)
            .to(ScalarType.Float32).div(255.0).mul(2).sub(1);
        var initLatent = EncodeLatents(model, imageTensor, request.BatchSize, request.VaeSampleSeed);
        var (keep, repaint) = InpaintMasking.LatentMasks(latentMask, width, height, latentWidth, latentHeight, (int)latentShape[0]);
        initLatent = InpaintMasking.FillLatent(initLatent, keep, repaint, request.InpaintFill, request.Rng, request.Seed);

        Tensor? conditioning = null;
        if (model.IsInpainting)
        {
            var (_, masked, maskLatent) = InpaintMasking.ImageConditioningInputs(imageTensor, imageMask, latentWidth, latentHeight, request.InpaintingMaskWeight);
            var maskedLatent = EncodeLatents(model, masked, 1, request.VaeSampleSeed + 1);
            conditioning = cat(new[] { maskLatent.to(maskedLatent.dtype), maskedLatent }, 1);
        }
        return new InpaintSetup(new LatentMaskBlend(initLatent, keep, repaint), overlay, conditioning, pasteTo, imageWidth, imageHeight);
    }

    /// <summary>
    /// Scaled latents of an image in [-1, 1] for <paramref name="batch"/> rows: the posterior mean, or (with a seed) a
    /// sample <c>mean + exp(0.5·logvar)·randn</c> drawn from torch's CPU generator seeded with it (LDM's
    /// DiagonalGaussianDistribution.sample, one draw for the whole batch).
    /// </summary>
    private static Tensor EncodeLatents(StableDiffusionCheckpoint model, Tensor image, int batch, long? sampleSeed)
    {
        var (mean, logvar) = model.Vae.Encode(image);
        var shape = new[] { (long)batch, mean.shape[1], mean.shape[2], mean.shape[3] };
        Tensor z;
        if (sampleSeed is { } seed)
        {
            using var generator = new Generator(unchecked((ulong)seed));
            var noise = randn(shape, dtype: ScalarType.Float32, generator: generator).to(mean.device);
            z = mean.expand(shape).add(logvar.mul(0.5).exp().expand(shape).mul(noise));
        }
        else
        {
            z = mean.expand(shape);
        }
        return z.mul(model.Vae.Config.ScaleFactor);
    }

    private static void Validate(StableDiffusionCheckpoint model, GenerationRequest request)
    {
        if (request.Outpaint != null)
            throw new ArgumentException("outpainting: expand the request with GenerationService.Normalize first (it builds the canvas and the masks)");
        if (request.ImageSize != null && (request.Mask == null || !request.InpaintFullRes) && !(request.Mask == null && request.ResizeMode == InitResizeMode.LatentUpscale))
            throw new ArgumentException("an image of its own size is for \"only masked\" inpainting (--inpaint-full-res), outpainting or the latent-upscale resize mode");
        if (request.ResizeMode == InitResizeMode.LatentUpscale)
        {
            if (request.Mask != null) throw new ArgumentException("the latent-upscale resize mode (A1111's 3) with an inpainting mask is not supported yet");
            int factor = model.Vae.Config.DownsampleFactor;
            var (w, h) = request.ImageSize ?? (request.Width, request.Height);
            if (request.InitImage != null && (w % factor != 0 || h % factor != 0))
                throw new ArgumentException($"the latent-upscale resize mode encodes the init image at its own size, {w}x{h}: both sides must be multiples of {factor}");
            if (request.InitImage != null && request.InitImage.Length != w * h * 3)
                throw new ArgumentException($"init image has {request.InitImage.Length} bytes, {w}x{h} RGB needs {w * h * 3}");
        }
        if (request.Mask != null)
        {
            if (request.InitImage == null) throw new ArgumentException("an inpainting mask needs an init image");
            var (imageWidth, imageHeight) = request.ImageSize ?? (request.Width, request.Height);
            if (imageWidth <= 0 || imageHeight <= 0) throw new ArgumentException($"image size {imageWidth}x{imageHeight} must be positive");
            if (request.InitImage.Length != imageWidth * imageHeight * 3)
                throw new ArgumentException($"init image has {request.InitImage.Length} bytes, {imageWidth}x{imageHeight} RGB needs {imageWidth * imageHeight * 3}");
            if (request.Mask.Length != imageWidth * imageHeight)
                throw new ArgumentException($"the mask has {request.Mask.Length} pixels, {imageWidth}x{imageHeight} needs {imageWidth * imageHeight}");
            if (request.LatentMask != null && request.LatentMask.Length != request.Width * request.Height)
                throw new ArgumentException($"the latent mask has {request.LatentMask.Length} pixels, {request.Width}x{request.Height} needs {request.Width * request.Height}");
            if (request.InpaintFullResPadding < 0) throw new ArgumentException("inpaint padding must be 0 or more");
            if (request.MaskBlur < 0 || request.MaskBlurY < 0) throw new ArgumentException("mask blur must be 0 or more");
            var (sampler, _) = SamplerRegistry.Resolve(request.Sampler, request.A1111SigmaQuirks);
            // LCM evaluates the model row by row, but A1111 blends its prediction after the model as for k-diffusion.
            if (sampler is Sampling.Samplers.LcmSampler)
                throw new ArgumentException($"sampler {sampler.Name} does not support inpainting yet (use another sampler such as Euler, Euler a, DPM++ 2M, DDIM)");
        }
        if (request.HiresEnabled)
        {
            if (request.InitImage != null) throw new ArgumentException("hires. fix is a txt2img option (no --init-image)");
            if (request.HiresResize is { } resize && (resize.Width < 0 || resize.Height < 0 || (resize.Width == 0 && resize.Height == 0)))
                throw new ArgumentException($"hires resize {resize.Width}x{resize.Height}: give a width, a height or both");
            if (request.HiresResize == null && request.HiresScale <= 1) throw new ArgumentException($"hires scale {request.HiresScale} must be above 1");
            var (hw, hh) = request.HiresSize(model.Vae.Config.DownsampleFactor);
            if (hw <= request.Width && hh <= request.Height) throw new ArgumentException($"hires size {hw}x{hh} must be larger than the first pass's {request.Width}x{request.Height}");
            if (hw % model.SizeMultiple != 0 || hh % model.SizeMultiple != 0)
                throw new ArgumentException($"hires size {hw}x{hh} is not supported by this model: width and height must be multiples of {model.SizeMultiple}");
            if (!GenerationRequest.BuiltInHiresUpscalers.Contains(request.HiresUpscaler) && request.HiresUpscalerPath == null)
                throw new ArgumentException($"unknown hires upscaler '{request.HiresUpscaler}': Latent, \"Latent (nearest)\", Lanczos, Nearest, None or an upscaler model's name");
            if (request.HiresUpscalerPath != null && request.HiresUpscaler.StartsWith("Latent", StringComparison.Ordinal))
                throw new ArgumentException($"hires upscaler '{request.HiresUpscaler}' is a latent mode, not the upscaler model {request.HiresUpscalerPath}");
            if (request.HiresUpscalerPath != null && !File.Exists(request.HiresUpscalerPath))
                throw new ArgumentException($"{request.HiresUpscalerPath}: no such upscaler file");
            if (request.HiresSampler != null) SamplerRegistry.Resolve(request.HiresSampler, request.A1111SigmaQuirks); // names an unknown one
            if (request.HiresSteps is < 1) throw new ArgumentException("hires steps must be at least 1");
            if (request.HiresDenoise <= 0 || request.HiresDenoise > 1) throw new ArgumentException("hires denoising strength must be in (0, 1]");
        }
        if (request.SizeConditioning != null && model.UNet.Config.AdmInChannels == null)
            throw new ArgumentException($"SDXL's size conditioning (original size, crop, target size) does not apply to this {model.Architecture.DisplayName} model");
        if (request.Mask == null && model.IsInpainting)
        {
            throw new ArgumentException("an inpainting checkpoint generates from an init image and a mask (--init-image and --mask)");
        }
        int m = model.SizeMultiple;
        if (request.Width <= 0 || request.Height <= 0 || request.Width % m != 0 || request.Height % m != 0)
            throw new ArgumentException($"size {request.Width}x{request.Height} is not supported by this model: width and height must be positive multiples of {m} (e.g. {8 * m}x{8 * m}, {8 * m}x{12 * m})");
        if (request.Steps < 1) throw new ArgumentException("steps must be at least 1");
        if (request.BatchSize < 1) throw new ArgumentException("batch size must be at least 1");
        if (request.InitImage != null && (request.Strength <= 0 || request.Strength > 1))
            throw new ArgumentException("img2img strength must be in (0, 1]");
    }
}
