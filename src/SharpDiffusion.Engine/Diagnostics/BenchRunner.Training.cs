using System.Diagnostics;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Formats;
using SharpDiffusion.Png;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Diagnostics;

/// <summary>Which trainers <see cref="BenchRunner.RunTraining"/> times, and the LoRA's shape.</summary>
public sealed record TrainBenchOptions
{
    public const string Lora = "lora", Embedding = "embedding", Hypernetwork = "hypernetwork";

    public IReadOnlyList<string> Kinds { get; init; } = [Lora, Embedding, Hypernetwork];

    public LoraAlgorithm Algorithm { get; init; } = LoraAlgorithm.Lora;

    public int Rank { get; init; } = 16;
}

/// <summary>One trainer's figures: seconds per optimizer step (batch 1) after a warm-up step, and the peak RSS of its run.</summary>
public sealed record TrainBenchRow(string Kind, IReadOnlyList<double> StepSeconds, double PeakRssMb)
{
    public double SecondsPerStep => StepSeconds.Average();
}

/// <summary>The figures of <see cref="BenchRunner.RunTraining"/>.</summary>
public sealed record TrainBenchResult
{
    public required string Model { get; init; }
    public int Size { get; init; }
    public required string Precision { get; init; }
    public int Threads { get; init; }
    public required string LoraShape { get; init; }

    /// <summary>Mean seconds of a guided (batch-2) inference step of the same model in the same process.</summary>
    public double InferenceStepSeconds { get; init; }

    public double LoadSeconds { get; init; }
    public double PeakRssMb { get; init; }
    public required IReadOnlyList<TrainBenchRow> Trainers { get; init; }
    public required IReadOnlyList<string> Notes { get; init; }
}

public static partial class BenchRunner
{
    /// <summary>
    /// Seconds per training step of the real trainers (<see cref="LoraTrainer"/>, <see cref="EmbeddingTrainer"/>,
    /// <see cref="HypernetworkTrainer"/>: batch 1, one image of <see cref="BenchOptions.Size"/> pixels, their default
    /// options otherwise), each run for one warm-up step plus <see cref="BenchOptions.Steps"/> timed ones, beside the
    /// guided inference step of the same model, with the peak RSS of each run (the high-water mark is reset between runs).
    /// </summary>
    public static TrainBenchResult RunTraining(BenchOptions options, TrainBenchOptions train, Action<string>? log = null) => WithModel(options, log, (bench, notes) =>
    {
        var model = bench.Model;
        double inferenceStep = TimeInferenceSteps(bench, options, log);
        var folder = Directory.CreateTempSubdirectory("sharpdiffusion-bench-train-").FullName;
        try
        {
            string data = WriteBenchDataset(folder, options.Size, options.Seed);
            var rows = new List<TrainBenchRow>();
            foreach (var kind in train.Kinds)
            {
                log?.Invoke($"training: {kind}, {options.Steps} timed step(s) after a warm-up step");
                ResetPeakRss();
                var clock = new StepClock(log);
                string output = Path.Combine(folder, "bench-" + kind);
                try
                {
                    switch (kind)
                    {
                        case TrainBenchOptions.Lora:
                            LoraTrainer.Train(model, new LoraTrainingOptions
                            {
                                DataPath = data, OutputPath = output + ".safetensors", Algorithm = train.Algorithm, Rank = train.Rank,
                                MaxSteps = options.Steps + 1, Resolution = options.Size, BucketStep = model.SizeMultiple, Seed = options.Seed,
                            }, clock);
                            break;
                        case TrainBenchOptions.Embedding:
                            EmbeddingTrainer.Train(model, new EmbeddingTrainingOptions
                            {
                                DataPath = data, OutputPath = output + ".pt", Name = "benchembedding", MaxSteps = options.Steps + 1,
                                Resolution = options.Size, BucketStep = model.SizeMultiple, Seed = options.Seed,
                            }, clock);
                            break;
                        case TrainBenchOptions.Hypernetwork:
                            HypernetworkTrainer.Train(model, new HypernetworkTrainingOptions
                            {
                                DataPath = data, OutputPath = output + ".pt", MaxSteps = options.Steps + 1, Resolution = options.Size, BucketStep = model.SizeMultiple, Seed = options.Seed,
                                Sizes = HypernetworkSizes(model.UNet.Config),
                            }, clock);
                            break;
                        default:
                            throw new ArgumentException($"unknown trainer '{kind}': {TrainBenchOptions.Lora}, {TrainBenchOptions.Embedding} or {TrainBenchOptions.Hypernetwork}");
                    }
                }
                catch (InvalidModelFileException e)
                {
                    notes.Add($"{kind}: not measured ({e.Message})");
                    continue;
                }
                catch (ArgumentException e) when (kind != TrainBenchOptions.Lora && model.ClipL == null)
                {
                    notes.Add($"{kind}: not measured ({e.Message})");
                    continue;
                }
                rows.Add(new TrainBenchRow(kind, clock.StepSeconds.Skip(1).ToList(), PeakRssMb()));
            }
            return new TrainBenchResult
            {
                Model = bench.Name,
                Size = options.Size,
                Precision = bench.Precision == ScalarType.BFloat16 ? "bf16" : "fp32",
                Threads = options.Threads,
                LoraShape = $"{train.Algorithm.ToString().ToLowerInvariant()} rank {train.Rank}",
                InferenceStepSeconds = inferenceStep,
                LoadSeconds = bench.LoadSeconds,
                PeakRssMb = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0),
                Trainers = rows,
                Notes = notes,
            };
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }, inferenceOnly: false);

    /// <summary>Mean seconds of the guided Euler steps after the first (warm-up), in inference mode.</summary>
    private static double TimeInferenceSteps(BenchModel bench, BenchOptions options, Action<string>? log)
    {
        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        int factor = bench.Model.Vae.Config.DownsampleFactor;
        var request = new SamplingRequest
        {
            Sampler = "Euler",
            Steps = options.Steps + 1,
            CfgScale = 7.0,
            Seed = options.Seed,
            LatentShape = new long[] { bench.Model.LatentChannels, options.Size / factor, options.Size / factor },
        };
        log?.Invoke($"inference: {options.Steps + 1} guided step(s) at {options.Size}x{options.Size}");
        var times = new List<double>();
        var clock = Stopwatch.StartNew();
        SamplingRun.Run(bench.Model.CreateDenoiser(), bench.Cond, bench.Uncond, request, step =>
        {
            times.Add(clock.Elapsed.TotalSeconds);
            clock.Restart();
            log?.Invoke($"  step {step.Index + 1}/{step.Total}: {times[^1]:F2} s");
        });
        return times.Skip(1).Average();
    }

    /// <summary>
    /// A1111's hypernetwork sizes for a U-Net: the context width and the widths of the levels with transformers (SD 1.5:
    /// 768, 320, 640, 1280, A1111's default), so every attention layer gets its module.
    /// </summary>
    private static IReadOnlyList<int> HypernetworkSizes(Models.UNetConfig unet) =>
        [unet.ContextDim, .. unet.ChannelMult.Where((_, level) => unet.TransformerDepth[level] > 0).Select(m => unet.ModelChannels * m).Distinct()];

    /// <summary>A kohya data folder with one seeded noise image of side <paramref name="size"/> and its caption.</summary>
    private static string WriteBenchDataset(string folder, int size, long seed)
    {
        var concept = Directory.CreateDirectory(Path.Combine(folder, "data", "1_bench")).FullName;
        var rgb = new byte[size * size * 3];
        new System.Random((int)seed).NextBytes(rgb);
        PngEncoder.Save(Path.Combine(concept, "image.png"), rgb, size, size);
        File.WriteAllText(Path.Combine(concept, "image.txt"), Prompt);
        return Path.GetDirectoryName(concept)!;
    }

    /// <summary>Linux: makes VmHWM (the peak RSS) start again from the current RSS (<c>/proc/self/clear_refs</c> value 5).</summary>
    private static void ResetPeakRss()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Elsewhere the peak stays the process's.
        }
    }

    private static double PeakRssMb() => Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);

    /// <summary>Seconds between a trainer's progress reports (synchronous: <see cref="Progress{T}"/> would post them).</summary>
    private sealed class StepClock(Action<string>? log) : IProgress<TrainingProgress>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public List<double> StepSeconds { get; } = new();

        public void Report(TrainingProgress value)
        {
            StepSeconds.Add(_clock.Elapsed.TotalSeconds);
            _clock.Restart();
            log?.Invoke($"  step {value.Step}/{value.TotalSteps}: {StepSeconds[^1]:F2} s, loss {value.Loss:F4}");
        }
    }
}
