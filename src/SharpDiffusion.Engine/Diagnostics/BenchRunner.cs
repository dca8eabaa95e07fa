using SharpDiffusion.Inspection;
using System.Diagnostics;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Text.Tokenization;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Diagnostics;

/// <summary>
/// End-to-end speed of one txt2img job on the real code path: load (a random model written to a temporary fp16
/// file unless a model is given), text encoding of prompt and negative prompt, guided Euler steps (batch-2 CFG
/// U-Net calls via EpsDenoiser + CfgDenoiser) and one VAE decode.
/// </summary>
public static partial class BenchRunner
{
    /// <summary>FLOPs of one guided SD1.5 U-Net step (batch 2) at 512x512; other sizes scale by pixel count.</summary>
    public const double Sd15GuidedStepFlops512 = 1.61e12;

    public const string Prompt = "a photograph of an astronaut riding a horse";

    /// <param name="log">Progress lines (what is being done), e.g. to stderr.</param>
    public static BenchResult Run(BenchOptions options, Action<string>? log = null) => WithModel(options, log, (bench, notes) =>
    {
        var model = bench.Model;
        using (bench.Cond)
        using (bench.Uncond)
        {
            int factor = model.Vae.Config.DownsampleFactor;
            var request = new SamplingRequest
            {
                Sampler = "Euler",
                Steps = options.Steps,
                CfgScale = 7.0,
                Seed = options.Seed,
                LatentShape = new long[] { model.LatentChannels, options.Size / factor, options.Size / factor },
            };
            var denoiser = model.CreateDenoiser();
            var stepTimes = new List<double>();
            var stepClock = Stopwatch.StartNew();
            log?.Invoke($"sampling {options.Steps} guided step(s) at {options.Size}x{options.Size}");
            using var scope = NewDisposeScope();
            var latents = SamplingRun.Run(denoiser, bench.Cond, bench.Uncond, request, step =>
            {
                stepTimes.Add(stepClock.Elapsed.TotalSeconds);
                stepClock.Restart();
                log?.Invoke($"  step {step.Index + 1}/{step.Total}: {stepTimes[^1]:F2} s");
            });

            log?.Invoke("decoding with the VAE");
            var vaeClock = Stopwatch.StartNew();
            using (var image = model.Vae.Decode(latents))
            {
                if (!image.isfinite().all().item<bool>()) notes.Add("the decoded image has non-finite values");
            }
            double vaeSeconds = vaeClock.Elapsed.TotalSeconds;

            var measured = stepTimes.Count > 1 ? stepTimes.Skip(1).ToList() : stepTimes;
            double stepMean = measured.Average();
            bool sd15UNet = model.UNet.Config.SameArchitecture(RandomModelArchitecture.Sd15.UNet);
            double flops = Sd15GuidedStepFlops512 * options.Size * (double)options.Size / (512.0 * 512.0);
            return new BenchResult
            {
                Model = bench.Name,
                WriteSeconds = bench.WriteSeconds,
                LoadSeconds = bench.LoadSeconds,
                TextEncodeSeconds = bench.TextEncodeSeconds,
                UNetStepSeconds = stepMean,
                StepSeconds = stepTimes,
                VaeDecodeSeconds = vaeSeconds,
                PeakRssMb = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0),
                UNetGflops = sd15UNet ? flops / 1e9 / stepMean : null,
                Precision = bench.Precision == ScalarType.BFloat16 ? "bf16" : "fp32",
                Threads = options.Threads,
                Size = options.Size,
                Steps = options.Steps,
                CpuFlags = bench.CpuFlags,
                TextInput = bench.TextInput,
                Notes = notes,
            };
        }
    });

    /// <summary>
    /// Seconds per step of every sampler (A1111's order) on the same model and prompts: one guided txt2img run of
    /// <see cref="BenchOptions.Steps"/> steps each, after one warm-up step, with the U-Net calls counted (Heun-type
    /// samplers make two per step; DPM adaptive picks its own steps; the timestep samplers stop one step early).
    /// </summary>
    public static SamplerBenchResult RunSamplers(BenchOptions options, Action<string>? log = null) => WithModel(options, log, (bench, notes) =>
    {
        var model = bench.Model;
        using (bench.Cond)
        using (bench.Uncond)
        {
            int factor = model.Vae.Config.DownsampleFactor;
            var counting = new CountingModel(new UNetDiffusionModel(model.UNet));
            DiscreteDenoiser denoiser = model.Prediction == Prediction.V ? new VDenoiser(counting, model.Schedule) : new EpsDenoiser(counting, model.Schedule);
            SamplingRequest Request(string sampler, int steps) => new()
            {
                Sampler = sampler,
                Steps = steps,
                CfgScale = 7.0,
                Seed = options.Seed,
                LatentShape = new long[] { model.LatentChannels, options.Size / factor, options.Size / factor },
            };
            log?.Invoke("warm-up: one Euler step");
            using (SamplingRun.Run(denoiser, bench.Cond, bench.Uncond, Request("Euler", 1))) { }

            var rows = new List<SamplerBenchRow>();
            var names = options.SamplerNames?.Select(n => SamplerRegistry.Resolve(n, true).Sampler.Name).ToList() ?? [.. SamplerRegistry.Names];
            foreach (var name in names)
            {
                // A sampler that needs more steps than asked (UniPC: 3) runs its minimum; the row says how many.
                int steps = Math.Max(options.Steps, SamplerRegistry.Resolve(name, true).Sampler.MinimumSteps);
                counting.Calls = 0;
                // DPM adaptive ignores the step count (on random weights it can take hundreds of calls): it is timed over
                // 3 calls per requested step, one order-3 attempt each.
                counting.Budget = name == "DPM adaptive" ? 3 * steps : null;
                bool stopped = false;
                var clock = Stopwatch.StartNew();
                using (var scope = NewDisposeScope())
                {
                    try
                    {
                        var latents = SamplingRun.Run(denoiser, bench.Cond, bench.Uncond, Request(name, steps));
                        if (!latents.isfinite().all().item<bool>()) notes.Add($"{name}: the latents have non-finite values");
                    }
                    catch (CallBudgetReachedException)
                    {
                        stopped = true;
                    }
                }
                double seconds = clock.Elapsed.TotalSeconds;
                var row = new SamplerBenchRow(name, steps, counting.Calls, seconds, stopped);
                rows.Add(row);
                log?.Invoke(stopped
                    ? $"  {name}: {row.SecondsPerCall:F3} s/call over {counting.Calls} U-Net calls (picks its own steps; stopped there)"
                    : $"  {name}: {seconds / steps:F3} s/step, {counting.Calls} U-Net calls{(steps != options.Steps ? $" ({steps} steps, its minimum)" : "")}");
            }
            counting.Budget = null;
            return new SamplerBenchResult
            {
                Model = bench.Name,
                Size = options.Size,
                Steps = options.Steps,
                Precision = bench.Precision == ScalarType.BFloat16 ? "bf16" : "fp32",
                Threads = options.Threads,
                Samplers = rows,
                Notes = notes,
            };
        }
    });

    /// <summary>Counts the guided U-Net calls (each one a batch of cond and uncond rows), stopping a run at an optional budget.</summary>
    private sealed class CountingModel(IDiffusionModel inner) : IDiffusionModel
    {
        public int Calls { get; set; }

        public int? Budget { get; set; }

        public Tensor Predict(Tensor x, Tensor t, Conditioning cond)
        {
            if (Calls >= Budget) throw new CallBudgetReachedException();
            Calls++;
            return inner.Predict(x, t, cond);
        }
    }

    private sealed class CallBudgetReachedException : Exception;

    /// <summary>The loaded model and encoded prompts a bench runs on, with what it cost to get there.</summary>
    private sealed record BenchModel(StableDiffusionCheckpoint Model, string Name, Conditioning Cond, Conditioning Uncond, string TextInput,
        ScalarType Precision, double WriteSeconds, double LoadSeconds, double TextEncodeSeconds, IReadOnlyList<string> CpuFlags);

    /// <summary>
    /// Writes a random model (unless one is given), loads it, encodes the prompts and runs <paramref name="body"/>
    /// in inference mode; the temporary files are removed afterwards.
    /// </summary>
    private static T WithModel<T>(BenchOptions options, Action<string>? log, Func<BenchModel, List<string>, T> body, bool inferenceOnly = true)
    {
        if (options.Steps < 1) throw new ArgumentException("--steps must be at least 1");
        if (options.Threads < 1) throw new ArgumentException("--threads must be at least 1");
        if (options.ModelPath == null)
        {
            // Checked before writing the (2 GB) random model; a given model is checked once loaded.
            var arch = options.Architecture;
            CheckSize(options.Size, arch.Vae.DownsampleFactor * (1 << (arch.UNet.Levels - 1)));
        }
        var notes = new List<string>();
        var cpu = BenchCpuFeatures.Read();
        var precision = options.Precision;
        if (precision == ScalarType.BFloat16 && !cpu.HasFastBf16)
        {
            precision = ScalarType.Float32;
            notes.Add("bf16 requested but the CPU has neither avx512_bf16 nor amx_bf16: ran in fp32");
        }
        set_num_threads(options.Threads);
        if (!NnpackSwitch.Disable()) notes.Add("NNPACK could not be switched off: libtorch may print 'Could not initialize NNPACK' warnings");

        string? tempFile = null, tempConfig = null;
        double writeSeconds = 0;
        try
        {
            string modelPath;
            if (options.ModelPath != null)
            {
                modelPath = options.ModelPath;
            }
            else
            {
                var folder = options.TempFolder ?? System.IO.Path.GetTempPath();
                tempFile = System.IO.Path.Combine(folder, $"sharpdiffusion-bench-{Guid.NewGuid():N}.safetensors");
                log?.Invoke($"writing a random {options.Architecture.Name} model (fp16) to {tempFile}");
                var writeClock = Stopwatch.StartNew();
                RandomModel.Write(tempFile, options.Architecture, TensorDType.F16, options.Seed);
                writeSeconds = writeClock.Elapsed.TotalSeconds;
                modelPath = tempFile;
                // Only scaled-down towers need a config (their heads are not 64 wide); sd15 loads the way a bare
                // downloaded checkpoint does, by detection.
                if (options.Architecture.TextWidth != options.Architecture.TextHeads * 64)
                {
                    tempConfig = System.IO.Path.ChangeExtension(tempFile, ".config.json");
                    File.WriteAllText(tempConfig, RandomModelConfig.Json(options.Architecture));
                }
            }

            log?.Invoke($"loading {modelPath} ({(precision == ScalarType.BFloat16 ? "bf16" : "fp32")})");
            var loadClock = Stopwatch.StartNew();
            using var model = StableDiffusionCheckpoint.Load(modelPath, new CheckpointLoadOptions
            {
                DType = precision,
                TokenizerPath = options.TokenizerPath,
                ConfigPath = tempConfig,
            });
            double loadSeconds = loadClock.Elapsed.TotalSeconds;
            CheckSize(options.Size, model.SizeMultiple);

            // Training benches need autograd outside the prompt encoding.
            using var mode = inferenceOnly ? inference_mode() : null;
            log?.Invoke("encoding the prompts");
            var textClock = Stopwatch.StartNew();
            Conditioning cond, uncond;
            string textInput;
            using (inferenceOnly ? null : inference_mode())
                (cond, uncond, textInput) = EncodePrompts(model, options.TokenizerPath);
            double textSeconds = textClock.Elapsed.TotalSeconds;
            if (textInput == "fixed-ids") notes.Add("no CLIP vocabulary found: the text encoder ran on fixed token ids");
            var bench = new BenchModel(model, options.ModelPath ?? $"random {options.Architecture.Name}", cond, uncond, textInput, precision,
                writeSeconds, loadSeconds, textSeconds, cpu.Flags);
            return body(bench, notes);
        }
        finally
        {
            foreach (var temp in new[] { tempFile, tempConfig })
                if (temp != null && File.Exists(temp)) File.Delete(temp);
        }
    }

    private static void CheckSize(int size, int multiple)
    {
        if (size <= 0 || size % multiple != 0)
            throw new ArgumentException($"--size {size}: must be a positive multiple of {multiple} for this model");
    }

    /// <summary>
    /// The real conditioner when a vocabulary is found; otherwise (SD1 only) the CLIP encoder on fixed ids: BOS,
    /// a few word ids, EOS padding, which costs the same as tokenized text (always 77 positions).
    /// </summary>
    internal static (Conditioning Cond, Conditioning Uncond, string TextInput) EncodePrompts(StableDiffusionCheckpoint model, string? tokenizerPath)
    {
        bool haveTokenizer;
        try
        {
            _ = model.Tokenizer;
            haveTokenizer = true;
        }
        catch (FileNotFoundException) when (tokenizerPath == null && model.ClipL != null && model.Family == BaseFamily.SD1)
        {
            haveTokenizer = false;
        }
        if (haveTokenizer)
        {
            var text = model.CreateTextConditioner();
            var cond = text.Encode(new[] { Prompt });
            var uncond = text.Encode(new[] { "" }, isNegative: true);
            return (cond, uncond, "tokenizer");
        }
        var clip = model.ClipL!;
        return (new Conditioning(clip.forward(FixedIds(320, 1125, 539, 320, 4517))),
            new Conditioning(clip.forward(FixedIds())), "fixed-ids");
    }

    private static Tensor FixedIds(params long[] words)
    {
        var ids = Enumerable.Repeat((long)ClipTokenizer.EndOfTextId, 77).ToArray();
        ids[0] = ClipTokenizer.StartOfTextId;
        for (int i = 0; i < words.Length; i++) ids[i + 1] = words[i];
        return tensor(ids).reshape(1, 77);
    }
}
