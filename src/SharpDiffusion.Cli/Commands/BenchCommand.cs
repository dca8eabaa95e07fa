using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SharpDiffusion.Engine.Diagnostics;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Formats;
using Spectre.Console;
using static TorchSharp.torch;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion bench --arch sd15 --size 512 --steps 2 [--precision bf16|fp32] [--model PATH] [--threads N] [--json]</c>:
/// times load, text encoding, guided U-Net steps and a VAE decode of a full-size model (random weights unless
/// --model is given); <c>--samplers</c> times every sampler's steps instead; <c>bench train [--algo lora --rank 16]
/// [--trainers lora,embedding,hypernetwork]</c> times the trainers' steps beside an inference step.
/// </summary>
internal sealed class BenchCommand : ICliCommand
{
    private readonly Option<string> _arch = new("--arch") { Description = "Random model architecture: " + string.Join(", ", RandomModelArchitecture.All.Select(a => a.Name)), DefaultValueFactory = _ => "sd15" };
    private readonly Option<int> _size = new("--size") { Description = "Square image size in pixels", DefaultValueFactory = _ => 512 };
    private readonly Option<int> _steps = new("--steps") { Description = "Guided U-Net steps", DefaultValueFactory = _ => 2 };
    private readonly Option<string> _precision = new("--precision") { Description = "fp32 or bf16 (bf16 only where the CPU has avx512_bf16/amx)", DefaultValueFactory = _ => "bf16" };
    private readonly Option<string?> _model = new("--model", "-m") { Description = "Benchmark this checkpoint instead of a random one" };
    private readonly Option<string?> _tokenizer = new("--tokenizer") { Description = "CLIP vocabulary (else searched; fixed token ids when none is found)" };
    private readonly Option<int?> _threads = new("--threads") { Description = "Torch threads (default: all processors)" };
    private readonly Option<bool> _json = new("--json") { Description = "Print one JSON object" };
    private readonly Option<bool> _samplers = new("--samplers") { Description = "Seconds per step of every sampler (--steps steps each) instead of the pipeline phases" };
    private readonly Option<string?> _samplerList = new("--sampler") { Description = "--samplers: only these, comma-separated (A1111 names or aliases)" };
    private readonly Option<string> _algo = new("--algo") { Description = "bench train: lora, locon, loha or lokr", DefaultValueFactory = _ => "lora" };
    private readonly Option<int> _rank = new("--rank") { Description = "bench train: the LoRA's rank", DefaultValueFactory = _ => 16 };
    private readonly Option<string> _trainers = new("--trainers") { Description = "bench train: which trainers, comma-separated", DefaultValueFactory = _ => "lora,embedding,hypernetwork" };

    public Command Create(CliContext context)
    {
        var command = new Command("bench", "Time text encoding, U-Net steps and VAE decode (random full-size weights by default)");
        foreach (var option in new Option[] { _arch, _size, _steps, _precision, _model, _tokenizer, _threads, _json })
        {
            option.Recursive = true; // also on `bench train`
            command.Options.Add(option);
        }
        command.Options.Add(_samplers);
        command.Options.Add(_samplerList);
        command.SetAction(result => Run(context, result));
        var train = new Command("train", "Seconds per step of the LoRA, embedding and hypernetwork trainers (batch 1, --steps timed steps after a warm-up) beside a guided inference step, with peak RSS");
        foreach (var option in new Option[] { _algo, _rank, _trainers }) train.Options.Add(option);
        train.SetAction(result => Run(context, result, training: true));
        command.Subcommands.Add(train);
        return command;
    }

    private int Run(CliContext context, ParseResult args, bool training = false)
    {
        BenchOptions options;
        TrainBenchOptions? train = null;
        try
        {
            if (training)
            {
                if (!LoraNetworkOptions.TryParseAlgorithm(args.GetValue(_algo)!, out var algorithm)) throw new ArgumentException($"--algo {args.GetValue(_algo)}: use lora, locon, loha or lokr");
                if (args.GetValue(_rank) < 1) throw new ArgumentException("--rank must be at least 1");
                var kinds = args.GetValue(_trainers)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var known = new[] { TrainBenchOptions.Lora, TrainBenchOptions.Embedding, TrainBenchOptions.Hypernetwork };
                if (kinds.Length == 0 || kinds.Any(k => !known.Contains(k)))
                    throw new ArgumentException($"--trainers {args.GetValue(_trainers)}: name lora, embedding and/or hypernetwork");
                train = new TrainBenchOptions { Kinds = kinds, Algorithm = algorithm, Rank = args.GetValue(_rank) };
            }
            var modelPath = args.GetValue(_model);
            if (modelPath != null && !File.Exists(modelPath)) throw new ArgumentException($"{modelPath}: no such file");
            var samplerNames = args.GetValue(_samplerList)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var name in samplerNames ?? []) Engine.Sampling.SamplerRegistry.Resolve(name); // unknown names: one line, exit 2
            options = new BenchOptions
            {
                Architecture = RandomModelArchitecture.Parse(args.GetValue(_arch)!),
                ModelPath = modelPath,
                TokenizerPath = args.GetValue(_tokenizer),
                SamplerNames = samplerNames,
                Size = args.GetValue(_size),
                Steps = args.GetValue(_steps),
                Precision = args.GetValue(_precision)!.ToLowerInvariant() switch
                {
                    "fp32" or "float32" => ScalarType.Float32,
                    "bf16" or "bfloat16" => ScalarType.BFloat16,
                    var p => throw new ArgumentException($"unknown precision '{p}': fp32 or bf16"),
                },
                Threads = args.GetValue(_threads) ?? Environment.ProcessorCount,
            };
        }
        catch (ArgumentException e)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }

        BenchResult result;
        try
        {
            if (train != null)
            {
                var trained = BenchRunner.RunTraining(options, train, line => context.Error.WriteLine(line));
                if (args.GetValue(_json)) context.Output.WriteLine(ToJson(trained));
                else WriteTable(context, trained);
                return ExitCodes.Success;
            }
            if (args.GetValue(_samplers))
            {
                var samplers = BenchRunner.RunSamplers(options, line => context.Error.WriteLine(line));
                if (args.GetValue(_json)) context.Output.WriteLine(ToJson(samplers));
                else WriteTable(context, samplers);
                return ExitCodes.Success;
            }
            result = BenchRunner.Run(options, line => context.Error.WriteLine(line));
        }
        catch (Exception e) when (e is ArgumentException || ExitCodes.IsBadInput(e))
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }

        if (args.GetValue(_json)) context.Output.WriteLine(ToJson(result));
        else WriteTable(context, result);
        return ExitCodes.Success;
    }

    internal static string ToJson(BenchResult r)
    {
        var values = new Dictionary<string, object?>
        {
            ["model"] = r.Model,
            ["load_s"] = Round(r.LoadSeconds),
            ["write_s"] = Round(r.WriteSeconds),
            ["text_encode_s"] = Round(r.TextEncodeSeconds),
            ["unet_step_s"] = Round(r.UNetStepSeconds),
            ["step_s"] = r.StepSeconds.Select(Round).ToArray(),
            ["vae_decode_s"] = Round(r.VaeDecodeSeconds),
            ["peak_rss_mb"] = Math.Round(r.PeakRssMb, 1),
            ["unet_gflops"] = r.UNetGflops is { } g ? Math.Round(g, 1) : null,
            ["precision"] = r.Precision,
            ["threads"] = r.Threads,
            ["size"] = r.Size,
            ["steps"] = r.Steps,
            ["cpu_flags"] = r.CpuFlags,
            ["text_input"] = r.TextInput,
            ["notes"] = r.Notes,
        };
        return JsonSerializer.Serialize(values);
    }

    internal static string ToJson(SamplerBenchResult r) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["model"] = r.Model,
        ["size"] = r.Size,
        ["steps"] = r.Steps,
        ["precision"] = r.Precision,
        ["threads"] = r.Threads,
        ["samplers"] = r.Samplers.Select(s => new Dictionary<string, object?>
        {
            ["sampler"] = s.Sampler,
            ["steps"] = s.Steps,
            ["model_calls"] = s.ModelCalls,
            ["seconds"] = Round(s.Seconds),
            ["s_per_step"] = s.SecondsPerStep is { } perStep ? Math.Round(perStep, 4) : null,
            ["s_per_call"] = Math.Round(s.SecondsPerCall, 4),
            ["stopped_at_call_budget"] = s.StoppedAtCallBudget,
        }).ToArray(),
        ["notes"] = r.Notes,
    });

    internal static string ToJson(TrainBenchResult r) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["model"] = r.Model,
        ["size"] = r.Size,
        ["precision"] = r.Precision,
        ["threads"] = r.Threads,
        ["lora"] = r.LoraShape,
        ["load_s"] = Round(r.LoadSeconds),
        ["inference_step_s"] = Math.Round(r.InferenceStepSeconds, 5),
        ["trainers"] = r.Trainers.Select(t => new Dictionary<string, object>
        {
            ["trainer"] = t.Kind,
            ["s_per_step"] = Math.Round(t.SecondsPerStep, 5),
            ["step_s"] = t.StepSeconds.Select(Round).ToArray(),
            ["x_inference_step"] = Math.Round(t.SecondsPerStep / r.InferenceStepSeconds, 2),
            ["peak_rss_mb"] = Math.Round(t.PeakRssMb, 1),
        }).ToArray(),
        ["peak_rss_mb"] = Math.Round(r.PeakRssMb, 1),
        ["notes"] = r.Notes,
    });

    private static void WriteTable(CliContext context, TrainBenchResult r)
    {
        var table = new Table().AddColumn("step (batch 1)").AddColumn(new TableColumn("s/step").RightAligned())
            .AddColumn(new TableColumn("x inference step").RightAligned()).AddColumn(new TableColumn("peak RSS").RightAligned());
        table.AddRow("guided inference step (batch 2)", r.InferenceStepSeconds.ToString("F2", CultureInfo.InvariantCulture), "1.00", "");
        foreach (var t in r.Trainers)
            table.AddRow(t.Kind == TrainBenchOptions.Lora ? $"lora ({Markup.Escape(r.LoraShape)})" : t.Kind, t.SecondsPerStep.ToString("F2", CultureInfo.InvariantCulture),
                (t.SecondsPerStep / r.InferenceStepSeconds).ToString("F2", CultureInfo.InvariantCulture), $"{t.PeakRssMb:F0} MB");
        context.CreateOutputConsole().Write(table);
        context.Output.WriteLine($"{r.Model}, {r.Size}x{r.Size}, {r.Precision}, {r.Threads} threads, load {r.LoadSeconds:F1} s, process peak RSS {r.PeakRssMb:F0} MB");
        foreach (var note in r.Notes) context.Output.WriteLine("note: " + note);
    }

    private static void WriteTable(CliContext context, SamplerBenchResult r)
    {
        var table = new Table().AddColumn("sampler").AddColumn(new TableColumn("U-Net calls").RightAligned())
            .AddColumn(new TableColumn("calls/step").RightAligned()).AddColumn(new TableColumn("s/step").RightAligned()).AddColumn(new TableColumn("s/call").RightAligned());
        foreach (var s in r.Samplers)
            table.AddRow(Markup.Escape(s.Sampler), s.ModelCalls.ToString(CultureInfo.InvariantCulture),
                s.CallsPerStep?.ToString("F2", CultureInfo.InvariantCulture) ?? "own steps",
                s.SecondsPerStep?.ToString("F3", CultureInfo.InvariantCulture) ?? "-", s.SecondsPerCall.ToString("F3", CultureInfo.InvariantCulture));
        context.CreateOutputConsole().Write(table);
        context.Output.WriteLine($"{r.Model}, {r.Size}x{r.Size}, {r.Steps} steps, {r.Precision}, {r.Threads} threads");
        foreach (var note in r.Notes) context.Output.WriteLine("note: " + note);
    }

    private static double Round(double seconds) => Math.Round(seconds, 3);

    private static void WriteTable(CliContext context, BenchResult r)
    {
        var table = new Table().AddColumn("measure").AddColumn(new TableColumn("value").RightAligned());
        string F(double v, string unit) => v.ToString("F2", CultureInfo.InvariantCulture) + " " + unit;
        table.AddRow("model", Markup.Escape(r.Model));
        table.AddRow("write (random model)", F(r.WriteSeconds, "s"));
        table.AddRow("load", F(r.LoadSeconds, "s"));
        table.AddRow("text encode (" + r.TextInput + ")", F(r.TextEncodeSeconds, "s"));
        table.AddRow($"U-Net guided step ({r.Size}x{r.Size}, mean)", F(r.UNetStepSeconds, "s"));
        table.AddRow("steps", string.Join(", ", r.StepSeconds.Select(s => s.ToString("F2", CultureInfo.InvariantCulture))));
        table.AddRow("VAE decode", F(r.VaeDecodeSeconds, "s"));
        table.AddRow("peak RSS", F(r.PeakRssMb, "MB"));
        table.AddRow("U-Net throughput", r.UNetGflops is { } g ? F(g, "GFLOP/s") : "n/a (not SD1.5-sized)");
        table.AddRow("precision / threads", $"{r.Precision} / {r.Threads}");
        table.AddRow("CPU flags", string.Join(" ", r.CpuFlags));
        context.CreateOutputConsole().Write(table);
        foreach (var note in r.Notes) context.Output.WriteLine("note: " + note);
    }
}
