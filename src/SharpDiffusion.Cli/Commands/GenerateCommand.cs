using System.CommandLine;
using System.Globalization;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.ControlNet;
using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Engine.Inpainting;
using SharpDiffusion.Cli.Output;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Hashing;
using SharpDiffusion.Png;
using Spectre.Console;
using static TorchSharp.torch;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion generate --model M --prompt P ...</c>: txt2img/img2img with A1111's parameters and semantics,
/// PNGs with A1111's "parameters" text, written atomically. <c>--from-png</c> re-runs an image's parameters
/// (options given on the command line win).
/// </summary>
internal sealed class GenerateCommand : ICliCommand
{
    private readonly Option<string?> _model = new("--model", "-m") { Description = "Checkpoint (.safetensors/.ckpt, single-file LDM layout, or a diffusers folder); default: the shipped sharp-emoji model ($SHARPDIFFUSION_MODEL)" };
    private readonly Option<string?> _config = new("--config") { Description = "LDM yaml for the checkpoint (default: NAME.yaml beside it, else detected from the weights)" };
    private readonly Option<string?> _tokenizer = new("--tokenizer") { Description = "CLIP vocabulary: vocab.json+merges.txt folder or bpe_simple_vocab_16e6.txt.gz" };
    private readonly Option<string?> _prompt = new("--prompt", "-p") { Description = "Prompt (A1111 syntax: (word:1.2), [word], BREAK)" };
    private readonly Option<string?> _negative = new("--negative", "-n") { Description = "Negative prompt" };
    private readonly Option<int?> _steps = new("--steps") { Description = "Sampling steps (default 20)" };
    private readonly Option<string?> _sampler = new("--sampler") { Description = "Sampler, A1111 name or alias: \"Euler a\", euler, \"DPM++ 2M\", dpmpp_2m, ... (default Euler a)" };
    private readonly Option<string?> _schedule = new("--schedule") { Description = "Schedule type (A1111 label or name): Automatic, Uniform, Karras, Exponential, Polyexponential, SGM Uniform, KL Optimal, Align Your Steps, Simple, Normal, DDIM, Beta" };
    private readonly Option<double?> _cfg = new("--cfg") { Description = "CFG scale (default 7)" };
    private readonly Option<long?> _seed = new("--seed") { Description = "Seed (default -1: random)" };
    private readonly Option<string?> _rng = new("--rng") { Description = "Noise source: cpu (A1111 CPU) or nv (A1111 NV, Philox)" };
    private readonly Option<int?> _width = new("--width", "-W") { Description = "Width in pixels (default: the model's size from its config, else 512)" };
    private readonly Option<int?> _height = new("--height", "-H") { Description = "Height in pixels (default: the model's size from its config, else 512)" };
    private readonly Option<int> _batch = new("--batch") { Description = "Images per job (seeds seed, seed+1, ...)", DefaultValueFactory = _ => 1 };
    private readonly Option<int> _batchCount = new("--batch-count") { Description = "Batches run one after another (A1111 'Batch count'); seeds continue", DefaultValueFactory = _ => 1 };
    private readonly Option<int?> _clipSkip = new("--clip-skip") { Description = "CLIP skip (A1111 'Clip skip', default 1)" };
    private readonly Option<string?> _initImage = new("--init-image") { Description = "img2img: the starting image (resized to the output size)" };
    private readonly Option<string?> _resizeMode = new("--resize-mode") { Description = "img2img: how an init image of another shape fits the size (A1111): just-resize (default), crop-and-resize, resize-and-fill, latent-upscale (encoded at its own size, latents stretched)" };
    private readonly Option<double?> _strength = new("--strength") { Description = "img2img denoising strength (default 0.75)" };
    private readonly Option<string?> _mask = new("--mask") { Description = "Inpainting: the mask image (white = repaint; transparency counts as the mask, as A1111), resized to the output size" };
    private readonly Option<double?> _maskBlur = new("--mask-blur") { Description = "Inpainting: mask blur in pixels (default 4)" };
    private readonly Option<double?> _maskBlurY = new("--mask-blur-y") { Description = "Inpainting: vertical mask blur when it differs from --mask-blur (A1111's mask_blur_y)" };
    private readonly Option<string?> _inpaintFill = new("--inpaint-fill") { Description = "Inpainting: masked content, A1111's original (default), fill (colours blurred in from around the hole; the default with --outpaint), latent-noise, latent-nothing" };
    private readonly Option<bool> _inpaintFullRes = new("--inpaint-full-res") { Description = "Inpainting, A1111 'Only masked': generate the mask's area (plus --inpaint-padding) at --width x --height and paste it back; the image keeps its own size" };
    private readonly Option<int?> _inpaintPadding = new("--inpaint-padding") { Description = "Inpainting with --inpaint-full-res: pixels around the mask (default 32)" };
    private readonly Option<string?> _outpaint = new("--outpaint") { Description = "Outpainting: LEFT,RIGHT,UP,DOWN pixels added to --init-image (canvas rounded up to multiples of 64, inpainted as A1111's script does: one job per --width x --height tile that reaches past the image)" };
    private readonly Option<bool> _maskInvert = new("--mask-invert") { Description = "Inpainting: repaint where the mask is black (A1111 'Inpaint not masked')" };
    private readonly Option<long?> _vaeSampleSeed = new("--vae-sample-seed") { Description = "img2img/inpainting: sample the VAE posterior (mean + std·randn) with torch's CPU generator seeded N (masked image: N+1) instead of using its mean" };
    private readonly Option<string[]> _control = new("--control") { Description = "ControlNet unit MODEL:IMAGE[:weight[:start:end]] (repeatable): a ControlNet file/folder or a name in --models-dir's ControlNet/, the control image (preprocessed, then fitted to the output size by --control-resize-mode), weight (1), guidance start and end (0, 1)" };
    private readonly Option<string?> _controlPreprocessor = new("--control-preprocessor") { Description = "ControlNet preprocessor for every --control image: none (the image is the map; default), canny (thresholds 100/200, at 512 pixels on the short side), invert" };
    private readonly Option<string?> _controlResizeMode = new("--control-resize-mode") { Description = "How every --control map fits the output size (sd-webui-controlnet): crop-and-resize (default), just-resize, resize-and-fill" };
    private readonly Option<double?> _hiresScale = new("--hires-scale") { Description = "Hires. fix: upscale factor of a second pass (txt2img)" };
    private readonly Option<string?> _hiresResize = new("--hires-resize") { Description = "Hires. fix: second-pass size WxH instead of --hires-scale (A1111's hr_resize_x/y; 0 for a side keeps the aspect ratio; another aspect ratio crops)" };
    private readonly Option<string?> _hiresUpscaler = new("--hires-upscaler") { Description = "Hires. fix upscaler: Latent (default), \"Latent (nearest)\", Lanczos, Nearest, None, or an ESRGAN/Real-ESRGAN file or its name in --models-dir (ESRGAN/, RealESRGAN/, upscalers/)" };
    private readonly Option<string?> _hiresSampler = new("--hires-sampler") { Description = "Hires. fix second-pass sampler (default: --sampler)" };
    private readonly Option<string?> _hiresSchedule = new("--hires-schedule") { Description = "Hires. fix second-pass schedule type (default: the hires sampler's, else --schedule)" };
    private readonly Option<string?> _hiresPrompt = new("--hires-prompt") { Description = "Hires. fix second-pass prompt (default: --prompt; its <lora:...> tags must be the prompt's)" };
    private readonly Option<string?> _hiresNegative = new("--hires-negative") { Description = "Hires. fix second-pass negative prompt (default: --negative)" };
    private readonly Option<int?> _hiresSteps = new("--hires-steps") { Description = "Hires. fix second-pass steps (default: --steps)" };
    private readonly Option<double?> _hiresDenoise = new("--hires-denoise") { Description = "Hires. fix denoising strength (default 0.7)" };
    private readonly Option<string?> _originalSize = new("--original-size") { Description = "SDXL size conditioning: original_size WxH (default: the image size, as A1111)" };
    private readonly Option<string?> _cropTopLeft = new("--crop-top-left") { Description = "SDXL size conditioning: crop_coords_top_left TOP,LEFT (default 0,0, as A1111)" };
    private readonly Option<string?> _targetSize = new("--target-size") { Description = "SDXL size conditioning: target_size WxH (default: the image size, as A1111)" };
    private readonly Option<string?> _refiner = new("--refiner") { Description = "A1111's refiner: a second checkpoint (the SDXL refiner, or one of the model's family) that takes over at --refiner-switch-at; a file, or a name beside --model or in --models-dir's Stable-diffusion/" };
    private readonly Option<double?> _refinerSwitchAt = new("--refiner-switch-at") { Description = "Share of the model's timesteps after which the refiner takes over (default 0.8; 1 never)" };
    private readonly Option<string?> _refinerConfig = new("--refiner-config") { Description = "The refiner's config (.yaml or our .json; default: NAME.yaml beside it, else detected from the weights)" };
    private readonly Option<string> _precision = new("--precision") { Description = "fp32 or bf16 (U-Net and VAE)", DefaultValueFactory = _ => "fp32" };
    private readonly Option<string> _device = new("--device") { Description = "cpu or cuda", DefaultValueFactory = _ => "cpu" };
    private readonly Option<string?> _out = new("--out", "-o") { Description = "Output PNG file, or a folder (default: outputs/)" };
    private readonly Option<string?> _saveLatents = new("--save-latents") { Description = "Also save the final latents to this .safetensors file (tensor 'latents')" };
    private readonly Option<string?> _fromPng = new("--from-png") { Description = "Take the parameters from a PNG made by A1111 or by this program" };
    private readonly Option<string?> _prediction = new("--prediction") { Description = "eps or v (SD2 768-v models without a yaml)" };
    private readonly Option<string?> _modelsDir = new("--models-dir") { Description = "A1111 models folder (Lora/, LyCORIS/, embeddings/, hypernetworks/) for <lora:name:w>, <hypernet:name:w> and embedding names in prompts; default: the shipped models/ folder ($SHARPDIFFUSION_MODELS_DIR)" };
    private readonly Option<string?> _vae = new("--vae") { Description = "A VAE file to use instead of the checkpoint's (default: NAME.vae.pt/.safetensors beside it, as A1111)" };
    private readonly GeneratePreviews _previews = new();
    private readonly Option<bool> _verbose = new("--verbose") { Description = "Print how many modules of each LoRA matched the model and which keys did not" };

    public Command Create(CliContext context)
    {
        var command = new Command("generate", "Generate images from a checkpoint (txt2img, img2img, inpainting)");
        foreach (var option in new Option[] { _model, _config, _tokenizer, _prompt, _negative, _steps, _sampler, _schedule, _cfg, _seed,
                     _rng, _width, _height, _batch, _batchCount, _clipSkip, _initImage, _resizeMode, _strength, _mask, _maskBlur, _maskBlurY, _inpaintFill, _inpaintFullRes, _inpaintPadding, _outpaint, _maskInvert, _vaeSampleSeed, _control, _controlPreprocessor, _controlResizeMode, _hiresScale, _hiresResize, _hiresUpscaler, _hiresSampler, _hiresSchedule, _hiresPrompt, _hiresNegative, _hiresSteps, _hiresDenoise, _originalSize, _cropTopLeft, _targetSize, _refiner, _refinerSwitchAt, _refinerConfig, _precision, _device, _out, _saveLatents, _fromPng, _prediction,
                     _modelsDir, _verbose, _vae }.Concat(_previews.Options))
            command.Options.Add(option);
        command.SetAction(result => Run(context, result));
        return command;
    }

    private int Run(CliContext context, ParseResult args)
    {
        CommandLineJob job;
        try
        {
            job = BuildJob(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidModelFileException or PngFormatException or FileNotFoundException)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }

        var load = job.Generation.Model.LoadOptions;
        if (load.DType == ScalarType.BFloat16 && load.Device.type == TorchSharp.DeviceType.CPU && !Engine.Diagnostics.BenchCpuFeatures.Read().HasFastBf16)
            context.Error.WriteLine("sharpdiffusion: warning: this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 runs slower than fp32 here (3x on the shipped model on an AVX2 machine); --precision fp32 is faster");
        var hasher = FileHasher.Shared.WithRunner(context.ErrorIsTerminal ? new HashProgress(context.CreateErrorConsole()).Run : null);
        using var service = new GenerationService(hasher);
        LoadedModel model;
        try
        {
            model = service.LoadModel(job.Generation.Model);
        }
        catch (Exception e) when (e is InvalidModelFileException or FileNotFoundException or Engine.Weights.ModelLoadException or ArgumentException)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }

        if (model.PredictionSource == PredictionSource.Probe)
            context.Error.WriteLine($"SD2 checkpoint without a config: the U-Net probe says {(model.Prediction == Prediction.V ? "v" : "eps")}-prediction (A1111's test; --prediction overrides)");

        Action<SamplerStep>? previews;
        IDisposable? previewResources;
        try
        {
            previews = _previews.Create(args, model.Architecture, job.Generation.ModelsDir, out previewResources);
            if (job.TaesdDecode)
                job = job with { Generation = job.Generation with { Parameters = job.Generation.Parameters with { TaesdDecoderPath = Engine.Previews.TaesdFiles.Decoder(job.Generation.ModelsDir, model.Architecture, "--decoder taesd") } } };
        }
        catch (Exception e) when (e is ArgumentException or InvalidModelFileException)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }
        using var previewScope = previewResources;

        var generation = job.Generation;
        if (job.InitImagePath != null)
        {
            try
            {
                var request = InitImageLoader.Attach(generation.Parameters, job.InitImagePath, job.MaskPath, out var resizedFrom);
                if (resizedFrom is { } from && job.Verbose)
                {
                    var (imageWidth, imageHeight) = request.ImageSize ?? (request.Width, request.Height);
                    context.Error.WriteLine($"{job.MaskPath}: mask of {from.Width}x{from.Height} resized to {imageWidth}x{imageHeight}");
                }
                generation = generation with { Parameters = request };
            }
            catch (InvalidDataException e)
            {
                context.Fail(e.Message);
                return ExitCodes.Usage;
            }
        }
        GenerationJobResult result;
        try
        {
            result = RunWithProgress(context, service, generation, new GenerationControl { StepObserver = previews });
        }
        catch (Exception e) when (e is ArgumentException or InvalidModelFileException)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }
        using (result)
        {
            foreach (var warning in result.Warnings) context.Error.WriteLine("sharpdiffusion: warning: " + warning);
            if (job.Verbose)
            {
                foreach (var line in result.Details) context.Error.WriteLine(line);
                foreach (var lora in result.Loras.Where(l => l.UnmatchedKeys.Count > 0))
                    context.Error.WriteLine($"lora {lora.Tag.Name}: unmatched keys: {string.Join(", ", lora.UnmatchedKeys)}");
            }
            var written = new List<string>();
            for (int i = 0; i < result.Images.Count; i++)
            {
                var image = result.Images[i];
                var path = OutputPath(job.OutPath, i, result.Images.Count, image.Seed);
                PngEncoder.Save(path, image.Rgb, image.Width, image.Height,
                    new[] { new KeyValuePair<string, string>(A1111Infotext.PngKeyword, image.Infotext) });
                written.Add(path);
            }
            if (job.SaveLatentsPath != null) SaveLatents(job.SaveLatentsPath, result.Latents);
            foreach (var path in written) context.Output.WriteLine(path);
        }
        return ExitCodes.Success;
    }

    private static GenerationJobResult RunWithProgress(CliContext context, GenerationService service, GenerationJob job, GenerationControl control)
    {
        if (!context.ErrorIsTerminal) return service.Generate(job, control: control);
        return context.CreateErrorConsole().Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("sampling", autoStart: true, maxValue: job.Parameters.Steps * job.BatchCount);
                var result = service.Generate(job, new StepProgress(step =>
                {
                    task.MaxValue = step.TotalSteps * step.IterationCount;
                    task.Value = step.Iteration * step.TotalSteps + step.Step;
                    task.Description = step.IterationCount == 1
                        ? $"sampling step {step.Step}/{step.TotalSteps}"
                        : $"batch {step.Iteration + 1}/{step.IterationCount}, step {step.Step}/{step.TotalSteps}";
                }), control);
                task.Value = task.MaxValue;
                return result;
            });
    }

    /// <summary>Updates the bar on the job's thread (Progress&lt;T&gt; would post to the thread pool and lag behind).</summary>
    private sealed class StepProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }

    /// <summary>The service job and what only the command line does with it (init image file, outputs).</summary>
    private sealed record CommandLineJob(GenerationJob Generation, string? InitImagePath, string? MaskPath, string? OutPath, string? SaveLatentsPath, bool Verbose, bool TaesdDecode);

    private CommandLineJob BuildJob(ParseResult args)
    {
        A1111Infotext? png = null;
        if (args.GetValue(_fromPng) is { } pngPath)
        {
            if (!File.Exists(pngPath)) throw new FileNotFoundException($"{pngPath}: no such file");
            var text = PngTextChunks.Get(PngTextChunks.Read(pngPath), A1111Infotext.PngKeyword)
                ?? throw new ArgumentException($"{pngPath}: the PNG has no A1111 generation parameters");
            png = A1111Infotext.Parse(text);
        }

        // No --model: the shipped model (or $SHARPDIFFUSION_MODEL), so that a fresh clone generates with one command.
        var modelPath = args.GetValue(_model) ?? ShippedModel.CheckpointPath()
            ?? throw new ArgumentException($"--model is required (a checkpoint file or diffusers folder); no shipped model (models/Stable-diffusion/{ShippedModel.FileName}) or ${ShippedModel.ModelEnvironment} was found");
        if (!CheckpointFiles.Exists(modelPath)) throw new FileNotFoundException($"{modelPath}: no such file or diffusers folder");
        var prompt = args.GetValue(_prompt) ?? png?.Prompt ?? throw new ArgumentException("--prompt is required");

        var sampler = args.GetValue(_sampler) ?? png?.Sampler ?? "Euler a";
        ScheduleType? schedule = null;
        var scheduleText = args.GetValue(_schedule) ?? png?["Schedule type"];
        if (scheduleText != null && !scheduleText.Equals("Automatic", StringComparison.OrdinalIgnoreCase)) schedule = ScheduleTypes.Parse(scheduleText);
        ScheduleType? hiresSchedule = null;
        var hiresScheduleText = args.GetValue(_hiresSchedule) ?? png?["Hires schedule type"];
        if (hiresScheduleText != null && !hiresScheduleText.Equals("Automatic", StringComparison.OrdinalIgnoreCase)) hiresSchedule = ScheduleTypes.Parse(hiresScheduleText);

        long seed = args.GetValue(_seed) ?? png?.Seed ?? -1;
        int nativeSize = ModelNativeSize.Find(modelPath, args.GetValue(_config)) ?? 512;
        var (pngWidth, pngHeight) = png?.Size ?? (nativeSize, nativeSize);
        string rngText = args.GetValue(_rng) ?? (png?["RNG"] ?? "cpu");

        var precision = args.GetValue(_precision)!.ToLowerInvariant() switch
        {
            "fp32" or "float32" => ScalarType.Float32,
            "bf16" or "bfloat16" => ScalarType.BFloat16,
            var p => throw new ArgumentException($"unknown precision '{p}': fp32 or bf16 (fp16 is not offered: it is ~250x slower on CPU)"),
        };
        var device = args.GetValue(_device)!.ToLowerInvariant() switch
        {
            "cpu" => CPU,
            "cuda" => cuda.is_available() ? CUDA : throw new ArgumentException("--device cuda: CUDA is not available (this build uses the CPU libtorch)"),
            var d => throw new ArgumentException($"unknown device '{d}': cpu or cuda"),
        };
        Prediction? prediction = args.GetValue(_prediction)?.ToLowerInvariant() switch
        {
            null => null,
            "eps" or "epsilon" => Prediction.Eps,
            "v" or "v-prediction" => Prediction.V,
            var p => throw new ArgumentException($"unknown prediction '{p}': eps or v"),
        };

        // Normalised here so that an unknown sampler fails before any loading.
        var request = GenerationService.Normalize(new GenerationRequest
        {
            Prompt = prompt,
            NegativePrompt = args.GetValue(_negative) ?? png?.NegativePrompt ?? "",
            Steps = args.GetValue(_steps) ?? png?.Steps ?? 20,
            Sampler = sampler,
            Schedule = schedule,
            CfgScale = args.GetValue(_cfg) ?? png?.CfgScale ?? 7.0,
            Seed = seed,
            Rng = NoiseSources.Parse(rngText),
            Width = args.GetValue(_width) ?? pngWidth,
            Height = args.GetValue(_height) ?? pngHeight,
            BatchSize = args.GetValue(_batch),
            ClipSkip = args.GetValue(_clipSkip) ?? png?.ClipSkip ?? 1,
            Strength = args.GetValue(_strength) ?? (png?["Denoising strength"] is { } ds ? double.Parse(ds, CultureInfo.InvariantCulture) : 0.75),
            MaskBlur = args.GetValue(_maskBlur) ?? (png?["Mask blur"] is { } mb ? double.Parse(mb, CultureInfo.InvariantCulture) : 4),
            MaskBlurY = args.GetValue(_maskBlurY),
            MaskInvert = args.GetValue(_maskInvert) || png?["Mask mode"] == "Inpaint not masked",
            InpaintFill = ParseInpaintFill(args.GetValue(_inpaintFill) ?? png?["Masked content"] ?? (args.GetValue(_outpaint) != null ? "fill" : "original")),
            InpaintFullRes = args.GetValue(_inpaintFullRes) || (png?["Inpaint area"] == "Only masked" && args.GetValue(_mask) != null),
            InpaintFullResPadding = args.GetValue(_inpaintPadding) ?? (png?["Masked area padding"] is { } pad ? int.Parse(pad, CultureInfo.InvariantCulture) : 32),
            Outpaint = args.GetValue(_outpaint) is { } outpaint ? OutpaintBorders.Parse(outpaint) : null,
            VaeSampleSeed = args.GetValue(_vaeSampleSeed),
            ResizeMode = (args.GetValue(_resizeMode)?.ToLowerInvariant()) switch
            {
                null or "just-resize" or "0" => InitResizeMode.JustResize,
                "crop-and-resize" or "1" => InitResizeMode.CropAndResize,
                "resize-and-fill" or "2" => InitResizeMode.ResizeAndFill,
                "latent-upscale" or "3" => InitResizeMode.LatentUpscale,
                var m => throw new ArgumentException($"--resize-mode {m}: just-resize, crop-and-resize, resize-and-fill or latent-upscale"),
            },
            HiresScale = args.GetValue(_hiresScale) ?? (png?["Hires upscale"] is { } hu ? double.Parse(hu, CultureInfo.InvariantCulture) : null),
            HiresResize = ParseHiresResize(args.GetValue(_hiresResize) ?? (args.GetValue(_hiresScale) == null ? png?["Hires resize"] : null)),
            HiresUpscaler = args.GetValue(_hiresUpscaler) ?? png?["Hires upscaler"] ?? "Latent",
            HiresSampler = args.GetValue(_hiresSampler) ?? png?["Hires sampler"],
            HiresSchedule = hiresSchedule,
            HiresPrompt = args.GetValue(_hiresPrompt) ?? png?["Hires prompt"],
            HiresNegativePrompt = args.GetValue(_hiresNegative) ?? png?["Hires negative prompt"],
            HiresSteps = args.GetValue(_hiresSteps) ?? (png?["Hires steps"] is { } hs ? int.Parse(hs, CultureInfo.InvariantCulture) : null),
            HiresDenoise = args.GetValue(_hiresDenoise) ?? ((png?["Hires upscale"] ?? png?["Hires resize"]) != null && png?["Denoising strength"] is { } hd ? double.Parse(hd, CultureInfo.InvariantCulture) : 0.7),
            RefinerSwitchAt = args.GetValue(_refinerSwitchAt) ?? (png?["Refiner switch at"] is { } rs ? double.Parse(rs, CultureInfo.InvariantCulture) : 0.8),
        });
        if (args.GetValue(_originalSize) != null || args.GetValue(_cropTopLeft) != null || args.GetValue(_targetSize) != null)
        {
            // Unset parts default to what A1111 passes: the image size and no crop.
            var (ow, oh) = ParsePair(args.GetValue(_originalSize), 'x', "--original-size", "WxH, e.g. 1024x1024") ?? (request.Width, request.Height);
            var (top, left) = ParsePair(args.GetValue(_cropTopLeft), ',', "--crop-top-left", "TOP,LEFT, e.g. 0,0") ?? (0, 0);
            var (tw, th) = ParsePair(args.GetValue(_targetSize), 'x', "--target-size", "WxH, e.g. 1024x1024") ?? (request.Width, request.Height);
            request = request with { SizeConditioning = new ImageSizeConditioning(oh, ow, top, left, th, tw) };
        }
        var initImage = args.GetValue(_initImage);
        if (initImage != null && !File.Exists(initImage)) throw new FileNotFoundException($"{initImage}: no such file");
        var maskPath = args.GetValue(_mask);
        if (maskPath != null && !File.Exists(maskPath)) throw new FileNotFoundException($"{maskPath}: no such file");
        if (maskPath != null && initImage == null) throw new ArgumentException("--mask needs --init-image (the image to inpaint)");
        if (request.Outpaint != null && initImage == null) throw new ArgumentException("--outpaint needs --init-image (the image to extend)");
        if (request.Outpaint != null && maskPath != null) throw new ArgumentException("--outpaint makes its own mask: leave out --mask");
        if (request.InpaintFullRes && maskPath == null) throw new ArgumentException("--inpaint-full-res needs --mask");
        if (request.InpaintFullResPadding < 0) throw new ArgumentException("--inpaint-padding must be 0 or more");
        var load = new CheckpointLoadOptions
        {
            ConfigPath = args.GetValue(_config),
            VaePath = args.GetValue(_vae) is { } vae ? (File.Exists(vae) ? vae : throw new FileNotFoundException($"{vae}: no such file")) : null,
            TokenizerPath = args.GetValue(_tokenizer),
            DType = precision,
            Device = device,
            Prediction = prediction,
        };
        var modelsDir = args.GetValue(_modelsDir) ?? ShippedModel.ModelsFolder();
        if (modelsDir != null && !Directory.Exists(modelsDir)) throw new ArgumentException($"--models-dir {modelsDir}: no such folder");
        // A hires upscaler that is not built in is an ESRGAN model: a file, or a name in the models folder (A1111's
        // ESRGAN/, RealESRGAN/); resolved by the service's rule, here too so that a wrong name fails before loading.
        request = GenerationService.ResolveHiresUpscaler(request, modelsDir);
        if (request.HiresEnabled && !GenerationRequest.BuiltInHiresUpscalers.Contains(request.HiresUpscaler) && request.HiresUpscalerPath == null)
            throw new ArgumentException($"--hires-upscaler {request.HiresUpscaler}: not Latent, \"Latent (nearest)\", Lanczos, Nearest or None, nor an upscaler file or model in {modelsDir ?? "--models-dir"} (ESRGAN/, RealESRGAN/, upscalers/)");
        int batchCount = args.GetValue(_batchCount);
        if (batchCount < 1) throw new ArgumentException("--batch-count must be at least 1");
        GenerateOutputs.Check(args.GetValue(_out), args.GetValue(_saveLatents), request.BatchSize * batchCount,
            [modelPath, initImage, maskPath, load.VaePath, load.ConfigPath, args.GetValue(_fromPng)]);
        var controlSpecs = args.GetValue(_control) ?? [];
        if (controlSpecs.Length > 0)
        {
            var resizeMode = ControlMapResize.Parse(args.GetValue(_controlResizeMode) ?? "crop-and-resize");
            request = request with { Control = controlSpecs.Select(spec => ControlUnitFor(spec, args.GetValue(_controlPreprocessor) ?? "none", resizeMode, modelsDir)).ToList() };
        }
        else if (args.GetValue(_controlResizeMode) != null)
        {
            throw new ArgumentException("--control-resize-mode needs a --control unit");
        }
        // A PNG names its refiner as "NAME [hash]" (A1111's short title): looked up like --refiner NAME.
        var refinerName = args.GetValue(_refiner) ?? (png?["Refiner"] is { } pngRefiner ? A1111Infotext.NameOfTitle(pngRefiner) : null);
        ModelChoice? refiner = refinerName == null ? null
            : new ModelChoice(ResolveCheckpoint(refinerName, modelPath, modelsDir), load with { ConfigPath = args.GetValue(_refinerConfig), VaePath = null, Prediction = null });
        if (refiner == null && args.GetValue(_refinerConfig) != null) throw new ArgumentException("--refiner-config needs --refiner");
        var generation = new GenerationJob { Model = new ModelChoice(modelPath, load), ModelsDir = modelsDir, Parameters = request, BatchCount = batchCount, Refiner = refiner };
        return new CommandLineJob(generation, initImage, maskPath, args.GetValue(_out), args.GetValue(_saveLatents), args.GetValue(_verbose),
            _previews.TaesdFinalDecode(args, png));
    }

    /// <summary>
    /// <c>MODEL:IMAGE[:weight[:start:end]]</c>: the model as a path, else a name in the models folder's ControlNet/
    /// (with or without extension); the image read at its own size and preprocessed (the map keeps the preprocessor's
    /// size; the engine fits it to the image with <paramref name="resizeMode"/>).
    /// </summary>
    private static ControlUnit ControlUnitFor(string spec, string preprocessor, ControlResizeMode resizeMode, string? modelsDir)
    {
        var parts = spec.Split(':');
        if (parts.Length is not (2 or 3 or 5))
            throw new ArgumentException($"--control {spec}: expected MODEL:IMAGE[:weight[:start:end]]");
        static double Number(string text, string what, string spec) =>
            double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : throw new ArgumentException($"--control {spec}: {what} '{text}' is not a number");
        var modelPath = ResolveControlNet(parts[0], modelsDir);
        var imagePath = parts[1];
        if (!File.Exists(imagePath)) throw new FileNotFoundException($"{imagePath}: no such file");
        var module = preprocessor.ToLowerInvariant();
        RgbImage image;
        try
        {
            var pixels = InitImageLoader.LoadRgb(imagePath, out int width, out int height);
            image = new RgbImage(width, height, pixels);
        }
        catch (InvalidDataException e)
        {
            throw new ArgumentException(e.Message);
        }
        return ControlPreprocessors.Unit(modelPath, image, module, resizeMode,
            weight: parts.Length > 2 ? Number(parts[2], "weight", spec) : 1.0,
            guidanceStart: parts.Length > 3 ? Number(parts[3], "guidance start", spec) : 0.0,
            guidanceEnd: parts.Length > 4 ? Number(parts[4], "guidance end", spec) : 1.0);
    }

    /// <summary>A checkpoint given as a path, or by name (with or without extension) beside the main model or in the models folder's Stable-diffusion/.</summary>
    private static string ResolveCheckpoint(string name, string modelPath, string? modelsDir)
    {
        if (CheckpointFiles.Exists(name)) return name;
        var folders = new List<string>();
        if (Path.GetDirectoryName(Path.GetFullPath(modelPath)) is { } beside) folders.Add(beside);
        if (modelsDir != null) folders.Add(Path.Combine(modelsDir, "Stable-diffusion"));
        foreach (var folder in folders)
            foreach (var candidate in new[] { name, name + ".safetensors", name + ".ckpt" })
            {
                var path = Path.Combine(folder, candidate);
                if (CheckpointFiles.Exists(path)) return path;
            }
        throw new FileNotFoundException($"refiner {name}: no such checkpoint file or diffusers folder (looked beside the model and in {(modelsDir == null ? "no models folder" : Path.Combine(modelsDir, "Stable-diffusion"))})");
    }

    private static string ResolveControlNet(string name, string? modelsDir)
    {
        if (File.Exists(name) || Directory.Exists(name)) return name;
        if (modelsDir != null)
        {
            var folder = new Engine.ExtraNetworks.ModelsFolder(modelsDir);
            if ((folder.FindControlNet(name) ?? folder.FindControlNet(Path.GetFileNameWithoutExtension(name))) is { } file) return file;
            // A diffusers folder by name.
            var directory = Path.Combine(folder.ControlNetFolder, name);
            if (Directory.Exists(directory)) return directory;
        }
        throw new FileNotFoundException(modelsDir == null
            ? $"{name}: no such ControlNet file (give a path, or --models-dir with a ControlNet/ folder)"
            : $"{name}: no such ControlNet file, nor in {Path.Combine(modelsDir, "ControlNet")}");
    }

    /// <summary>A1111's "Masked content" names, as the option and as the UI writes them.</summary>
    private static InpaintFill ParseInpaintFill(string text) => text.ToLowerInvariant().Replace(' ', '-') switch
    {
        "original" => InpaintFill.Original,
        "fill" => InpaintFill.Fill,
        "latent-noise" => InpaintFill.LatentNoise,
        "latent-nothing" => InpaintFill.LatentNothing,
        _ => throw new ArgumentException($"unknown --inpaint-fill '{text}': original, fill, latent-noise or latent-nothing"),
    };

    /// <summary>A file path is used as given (with -N before the extension for batches); a folder gets A1111-style NNNNN-SEED.png names.</summary>
    private static string OutputPath(string? outPath, int index, int count, long seed)
    {
        outPath ??= GenerateOutputs.DefaultFolder;
        if (GenerateOutputs.IsPngFile(outPath)) return GenerateOutputs.PngFile(outPath, index, count);
        Directory.CreateDirectory(outPath);
        int next = Directory.EnumerateFiles(outPath, "*.png")
            .Select(f => Path.GetFileName(f).Split('-')[0])
            .Select(n => int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v + 1 : 0)
            .DefaultIfEmpty(0).Max();
        return Path.Combine(outPath, $"{next:D5}-{seed}.png");
    }

    private static void SaveLatents(string path, Tensor latents)
    {
        using var cpu = latents.to(ScalarType.Float32).cpu().contiguous();
        var bytes = cpu.bytes.ToArray();
        SafetensorsWriter.Write(path, new[] { TensorToWrite.FromBytes("latents", TensorDType.F32, cpu.shape, bytes) });
    }

    /// <summary>Two non-negative integers joined by <paramref name="separator"/>; null for none; else one line naming the option.</summary>
    private static (int First, int Second)? ParsePair(string? text, char separator, string option, string expected)
    {
        if (text == null) return null;
        var parts = text.Split(separator);
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int a)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int b))
            throw new ArgumentException($"{option} {text}: {expected}");
        return (a, b);
    }

    /// <summary>"WxH" (either side may be 0, not both) as A1111's infotext writes Hires resize; null for none.</summary>
    private static (int Width, int Height)? ParseHiresResize(string? text)
    {
        const string expected = "WxH, e.g. 1024x768 or 1024x0";
        var size = ParsePair(text, 'x', "--hires-resize", expected);
        if (size == (0, 0)) throw new ArgumentException($"--hires-resize {text}: {expected}");
        return size;
    }
}
