using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Text.Prompts;
using static TorchSharp.torch;

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
    public static GenerationResult Generate(StableDiffusionCheckpoint model, GenerationRequest request,
        Action<SamplerStep>? onStep = null, CancellationToken cancellation = default,
        Func<int, IPromptEmbeddingLookup?>? embeddingsForWidth = null, GenerationControl? control = null)
    {
        Validate(model, request);
        using var scope = NewDisposeScope();
        using var mode = inference_mode();

        var text = model.CreateTextConditioner(request.ClipSkip, embeddingsForWidth);
        var sizes = request.SizeConditioning ?? ImageSizeConditioning.ForImage(request.Height, request.Width);
        using var cond = text.Encode(new[] { request.Prompt }, isNegative: false, sizes);
        using var uncond = text.Encode(new[] { request.NegativePrompt }, isNegative: true, sizes);

        int factor = model.Vae.Config.DownsampleFactor;
        var latentShape = new long[] { model.LatentChannels, request.Height / factor, request.Width / factor };
        Tensor? initLatents = null;
        if (request.InitImage is { } rgb)
        {
            var image = RgbToTensor(rgb, request.Width, request.Height);
            initLatents = model.Vae.EncodeToLatents(image).expand(request.BatchSize, -1, -1, -1);
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
        };
        var denoiser = model.CreateDenoiser();
        Tensor latents;
        bool interrupted = false;
        if (control == null)
        {
            latents = SamplingRun.Run(denoiser, cond, uncond, sampling, onStep, cancellation);
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
                latents = SamplingRun.Run(denoiser, cond, uncond, sampling, Step, cancellation);
            }
            catch (SamplingStopped)
            {
                latents = lastDenoised!;
                scope.Attach(latents);
                interrupted = true;
            }
        }

        var images = DecodeImages(model, latents);
        var seeds = Enumerable.Range(0, request.BatchSize).Select(i => request.Seed + i).ToArray();
        return new GenerationResult(images, request.Width, request.Height, seeds, latents.MoveToOuterDisposeScope()) { Interrupted = interrupted };
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

    private static void Validate(StableDiffusionCheckpoint model, GenerationRequest request)
    {
        int m = model.SizeMultiple;
        if (request.Width <= 0 || request.Height <= 0 || request.Width % m != 0 || request.Height % m != 0)
            throw new ArgumentException($"size {request.Width}x{request.Height} is not supported by this model: width and height must be positive multiples of {m} (e.g. {8 * m}x{8 * m}, {8 * m}x{12 * m})");
        if (request.Steps < 1) throw new ArgumentException("steps must be at least 1");
        if (request.BatchSize < 1) throw new ArgumentException("batch size must be at least 1");
        if (request.InitImage != null && (request.Strength <= 0 || request.Strength > 1))
            throw new ArgumentException("img2img strength must be in (0, 1]");
    }
}
