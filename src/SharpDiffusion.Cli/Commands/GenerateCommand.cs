using System.CommandLine;
using System.Globalization;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Cli.Output;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;
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
    private readonly Option<string?> _model = new("--model", "-m") { Description = "Checkpoint (.safetensors/.ckpt, single-file LDM layout)" };
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
    private readonly Option<int?> _width = new("--width", "-W") { Description = "Width in pixels (default 512)" };
    private readonly Option<int?> _height = new("--height", "-H") { Description = "Height in pixels (default 512)" };
    private readonly Option<int> _batch = new("--batch") { Description = "Images per job (seeds seed, seed+1, ...)", DefaultValueFactory = _ => 1 };
    private readonly Option<int?> _clipSkip = new("--clip-skip") { Description = "CLIP skip (A1111 'Clip skip', default 1)" };
    private readonly Option<string?> _initImage = new("--init-image") { Description = "img2img: the starting image (resized to the output size)" };
    private readonly Option<double?> _strength = new("--strength") { Description = "img2img denoising strength (default 0.75)" };
    private readonly Option<string> _precision = new("--precision") { Description = "fp32 or bf16 (U-Net and VAE)", DefaultValueFactory = _ => "fp32" };
    private readonly Option<string> _device = new("--device") { Description = "cpu or cuda", DefaultValueFactory = _ => "cpu" };
    private readonly Option<string?> _out = new("--out", "-o") { Description = "Output PNG file, or a folder (default: outputs/)" };
    private readonly Option<string?> _saveLatents = new("--save-latents") { Description = "Also save the final latents to this .safetensors file (tensor 'latents')" };
    private readonly Option<string?> _fromPng = new("--from-png") { Description = "Take the parameters from a PNG made by A1111 or by this program" };
    private readonly Option<string?> _prediction = new("--prediction") { Description = "eps or v (SD2 768-v models without a yaml)" };
    private readonly Option<string?> _modelsDir = new("--models-dir") { Description = "A1111 models folder (Lora/, LyCORIS/, embeddings/, hypernetworks/) for <lora:name:w>, <hypernet:name:w> and embedding names in prompts" };
    private readonly Option<string?> _vae = new("--vae") { Description = "A VAE file to use instead of the checkpoint's (default: NAME.vae.pt/.safetensors beside it, as A1111)" };
    private readonly GeneratePreviews _previews = new();
    private readonly Option<bool> _verbose = new("--verbose") { Description = "Print how many modules of each LoRA matched the model and which keys did not" };

    public Command Create(CliContext context)
    {
        var command = new Command("generate", "Generate images from a checkpoint (txt2img, img2img)");
        foreach (var option in new Option[] { _model, _config, _tokenizer, _prompt, _negative, _steps, _sampler, _schedule, _cfg, _seed,
                     _rng, _width, _height, _batch, _clipSkip, _initImage, _strength, _precision, _device, _out, _saveLatents, _fromPng, _prediction,
                     _modelsDir, _verbose, _vae }.Concat(_previews.Options))
            command.Options.Add(option);
        command.SetAction(result => Run(context, result));
        return command;
    }

    private int Run(CliContext context, ParseResult args)
    {
        GenerationJob job;
        try
        {
            job = BuildJob(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidModelFileException or PngFormatException or FileNotFoundException)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }

        StableDiffusionCheckpoint model;
        try
        {
            model = StableDiffusionCheckpoint.Load(job.ModelPath, job.LoadOptions);
            try
            {
                _ = model.Tokenizer; // a missing vocabulary is a usage error, reported before any work
            }
            catch
            {
                model.Dispose();
                throw;
            }
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
            previews = _previews.Create(args, model.Family, job.ModelsDir, out previewResources);
        }
        catch (Exception e) when (e is ArgumentException or InvalidModelFileException)
        {
            model.Dispose();
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }

        using (previewResources)
        using (model)
        using (var session = new ExtraNetworkSession(model, job.ModelsDir == null ? null : new ModelsFolder(job.ModelsDir)))
        {
            var request = job.Request;
            if (job.InitImagePath != null)
            {
                try
                {
                    request = request with { InitImage = InitImageLoader.LoadRgb(job.InitImagePath, request.Width, request.Height) };
                }
                catch (InvalidDataException e)
                {
                    context.Fail(e.Message);
                    return ExitCodes.Usage;
                }
            }
            ExtraNetworkJobResult generated;
            try
            {
                generated = RunWithProgress(context, session, request, previews);
            }
            catch (ArgumentException e)
            {
                context.Fail(e.Message);
                return ExitCodes.Usage;
            }
            foreach (var warning in generated.Warnings) context.Error.WriteLine("sharpdiffusion: warning: " + warning);
            if (job.Verbose)
            {
                foreach (var line in generated.Details) context.Error.WriteLine(line);
                foreach (var lora in generated.Loras.Where(l => l.UnmatchedKeys.Count > 0))
                    context.Error.WriteLine($"lora {lora.Tag.Name}: unmatched keys: {string.Join(", ", lora.UnmatchedKeys)}");
            }
            var result = generated.Result;
            using (generated)
            {
                var sampler = SamplerRegistry.Create(request.Sampler);
                string scheduleName = SamplerRegistry.ScheduleLabel(request.Sampler, request.Schedule);
                string modelHash = ModelShortHash(context, model.Path);
                var written = new List<string>();
                for (int i = 0; i < result.Images.Count; i++)
                {
                    var info = A1111Infotext.ForTxt2Img(request.Prompt, request.NegativePrompt, request.Steps, sampler.Name, scheduleName,
                        request.CfgScale, result.Seeds[i], request.Width, request.Height, modelHash,
                        Path.GetFileNameWithoutExtension(model.Path), request.ClipSkip);
                    if (model.VaePath != null)
                    {
                        info["VAE hash"] = ModelShortHash(context, model.VaePath);
                        info["VAE"] = Path.GetFileName(model.VaePath);
                    }
                    if (request.InitImage != null) info["Denoising strength"] = A1111Infotext.FormatNumber(request.Strength);
                    if (request.Rng == NoiseSourceKind.Nv) info["RNG"] = "NV";
                    foreach (var (key, value) in SamplerRegistry.ScheduleInfotextFields(request.Schedule)) info[key] = value;
                    foreach (var (key, value) in generated.InfotextFields) info[key] = value;
                    var path = OutputPath(job.OutPath, i, result.Images.Count, result.Seeds[i]);
                    PngEncoder.Save(path, result.Images[i], result.Width, result.Height,
                        new[] { new KeyValuePair<string, string>(A1111Infotext.PngKeyword, info.Format()) });
                    written.Add(path);
                }
                if (job.SaveLatentsPath != null) SaveLatents(job.SaveLatentsPath, result.Latents);
                foreach (var path in written) context.Output.WriteLine(path);
            }
        }
        return ExitCodes.Success;
    }

    private static ExtraNetworkJobResult RunWithProgress(CliContext context, ExtraNetworkSession session, GenerationRequest request, Action<SamplerStep>? previews)
    {
        if (!context.ErrorIsTerminal) return session.Generate(request, previews);
        return context.CreateErrorConsole().Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("sampling", autoStart: true, maxValue: request.Steps);
                var result = session.Generate(request, step =>
                {
                    previews?.Invoke(step);
                    task.MaxValue = step.Total;
                    task.Value = step.Index + 1;
                    task.Description = $"sampling step {step.Index + 1}/{step.Total}";
                });
                task.Value = task.MaxValue;
                return result;
            });
    }

    private sealed record GenerationJob(string ModelPath, CheckpointLoadOptions LoadOptions, GenerationRequest Request,
        string? InitImagePath, string? OutPath, string? SaveLatentsPath, string? ModelsDir, bool Verbose);

    private GenerationJob BuildJob(ParseResult args)
    {
        A1111Infotext? png = null;
        if (args.GetValue(_fromPng) is { } pngPath)
        {
            if (!File.Exists(pngPath)) throw new FileNotFoundException($"{pngPath}: no such file");
            var text = PngTextChunks.Get(PngTextChunks.Read(pngPath), A1111Infotext.PngKeyword)
                ?? throw new ArgumentException($"{pngPath}: the PNG has no A1111 generation parameters");
            png = A1111Infotext.Parse(text);
        }

        var modelPath = args.GetValue(_model) ?? throw new ArgumentException("--model is required (a checkpoint file)");
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"{modelPath}: no such file");
        var prompt = args.GetValue(_prompt) ?? png?.Prompt ?? throw new ArgumentException("--prompt is required");

        var sampler = args.GetValue(_sampler) ?? png?.Sampler ?? "Euler a";
        SamplerRegistry.Resolve(sampler); // unknown names fail here, before any loading
        ScheduleType? schedule = null;
        var scheduleText = args.GetValue(_schedule) ?? png?["Schedule type"];
        if (scheduleText != null && !scheduleText.Equals("Automatic", StringComparison.OrdinalIgnoreCase)) schedule = ScheduleTypes.Parse(scheduleText);

        long seed = args.GetValue(_seed) ?? png?.Seed ?? -1;
        if (seed == -1) seed = System.Random.Shared.NextInt64(0, uint.MaxValue);
        var (pngWidth, pngHeight) = png?.Size ?? (512, 512);
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

        var request = new GenerationRequest
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
        };
        var initImage = args.GetValue(_initImage);
        if (initImage != null && !File.Exists(initImage)) throw new FileNotFoundException($"{initImage}: no such file");
        var load = new CheckpointLoadOptions
        {
            ConfigPath = args.GetValue(_config),
            VaePath = args.GetValue(_vae) is { } vae ? (File.Exists(vae) ? vae : throw new FileNotFoundException($"{vae}: no such file")) : null,
            TokenizerPath = args.GetValue(_tokenizer),
            DType = precision,
            Device = device,
            Prediction = prediction,
        };
        var modelsDir = args.GetValue(_modelsDir);
        if (modelsDir != null && !Directory.Exists(modelsDir)) throw new ArgumentException($"--models-dir {modelsDir}: no such folder");
        return new GenerationJob(modelPath, load, request, initImage, args.GetValue(_out), args.GetValue(_saveLatents), modelsDir, args.GetValue(_verbose));
    }

    /// <summary>
    /// A1111's "Model hash": the first 10 hex digits of the file's sha256 (cached per path, size and mtime; the first
    /// time a multi-GB checkpoint is hashed a progress bar shows on a terminal).
    /// </summary>
    private static string ModelShortHash(CliContext context, string path)
    {
        var cache = new HashCache();
        if (!cache.TryGet(path, out var hashes))
        {
            hashes = context.ErrorIsTerminal
                ? new HashProgress(context.CreateErrorConsole()).Run(path, new FileInfo(path).Length, progress => ModelHashes.Compute(path, progress))
                : ModelHashes.Compute(path);
            cache.Set(path, hashes);
            cache.Save();
        }
        return hashes.Short;
    }

    /// <summary>A file path is used as given (with -N before the extension for batches); a folder gets A1111-style NNNNN-SEED.png names.</summary>
    private static string OutputPath(string? outPath, int index, int count, long seed)
    {
        outPath ??= "outputs";
        if (outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
        {
            var dir = Path.GetDirectoryName(Path.GetFullPath(outPath))!;
            Directory.CreateDirectory(dir);
            return count == 1 ? outPath : Path.Combine(dir, $"{Path.GetFileNameWithoutExtension(outPath)}-{index + 1}.png");
        }
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
}
