using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion train lora --model BASE --data DIR --out FILE [...]</c>: trains a kohya LoRA or LyCORIS network (see
/// Engine/Training). Exit 0 when the LoRA (or, with an early stop, the checkpoint) is written, 1 for unusable data or
/// model files, 2 for bad usage. Progress goes to stderr, or with <c>--json</c> one JSON line per logged step to stdout.
/// </summary>
internal sealed class TrainCommand : ICliCommand
{
    public Command Create(CliContext context)
    {
        var command = new Command("train", "Train extended models on your own images (kohya LoRA, A1111 embedding and hypernetwork)");
        command.Subcommands.Add(CreateLora(context));
        command.Subcommands.Add(CreateEmbedding(context));
        command.Subcommands.Add(CreateHypernetwork(context));
        command.Subcommands.Add(TrainCheckpointCommand.Create(context));
        return command;
    }

    private static Command CreateEmbedding(CliContext context)
    {
        var shared = new TemplateTrainingCliOptions("0.005", "0.005:100, 1e-3:1000, 1e-5", "the vectors");
        var output = new Option<string>("--out", "-o") { Description = "The embedding to write: .pt (A1111 layout) or .safetensors (emb_params)", Required = true };
        var name = new Option<string>("--name") { Description = "The word the embedding stands for in the templates' [name]", Required = true };
        var vectors = new Option<int>("--vectors") { Description = "Vectors per token", DefaultValueFactory = _ => 1 };
        var initText = new Option<string>("--init-text") { Description = "Text whose token embeddings start the vectors (empty: zeros)", DefaultValueFactory = _ => "*" };
        var command = new Command("embedding", "Train an A1111 textual-inversion embedding");
        shared.AddTo(command, output, name, vectors, initText);

        command.SetAction(r =>
        {
            string modelPath = r.GetValue(shared.Model)!, outPath = r.GetValue(output)!;
            string? problem = CheckPaths(modelPath, r.GetValue(shared.Data)!, outPath);
            if (problem == null && !outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) && !outPath.EndsWith(".pt", StringComparison.OrdinalIgnoreCase))
                problem = $"{outPath}: embeddings are written as .pt (A1111) or .safetensors (emb_params)";
            if (!TryPrecision(r.GetValue(shared.Precision)!, out var dtype)) problem ??= $"--precision {r.GetValue(shared.Precision)}: fp32 or bf16";
            if (problem != null)
            {
                context.Fail(problem);
                return ExitCodes.Usage;
            }
            var options = shared.Apply(r, new EmbeddingTrainingOptions
            {
                DataPath = r.GetValue(shared.Data)!,
                OutputPath = outPath,
                Name = r.GetValue(name)!,
                Vectors = r.GetValue(vectors),
                InitText = r.GetValue(initText)!,
            });
            return RunTraining(context, modelPath, shared.LoadOptions(r, dtype), r.GetValue(shared.Json), (checkpoint, progress) =>
            {
                var result = EmbeddingTrainer.Train(checkpoint, options, progress);
                return (result.OutputPath, result.DataProblems);
            });
        });
        return command;
    }

    private static Command CreateHypernetwork(CliContext context)
    {
        var shared = new TemplateTrainingCliOptions("0.00001", "1e-5:100, 1e-6", "the hypernetwork");
        var output = new Option<string>("--out", "-o") { Description = "The hypernetwork to write (A1111 .pt)", Required = true };
        var name = new Option<string?>("--name") { Description = "Stored name and the templates' [name] (default: the file name)" };
        var layers = new Option<string>("--layer-structure") { Description = "Layer widths as multiples, starting and ending with 1", DefaultValueFactory = _ => "1,2,1" };
        var activation = new Option<string>("--activation") { Description = "linear, relu, leakyrelu, elu, swish, tanh, sigmoid, ...", DefaultValueFactory = _ => "linear" };
        var layerNorm = new Option<bool>("--layer-norm") { Description = "LayerNorm after every layer" };
        var dropout = new Option<bool>("--dropout") { Description = "A1111's default dropout (0.3 after hidden layers)" };
        var dropoutStructure = new Option<string?>("--dropout-structure") { Description = "Dropout after each layer, e.g. \"0,0.3,0\"" };
        var sizes = new Option<string>("--sizes") { Description = "Module widths (A1111 enable_sizes; default: the model's text width, then 320,640,1280)" };
        var command = new Command("hypernetwork", "Train an A1111 hypernetwork");
        shared.AddTo(command, output, name, layers, activation, layerNorm, dropout, dropoutStructure, sizes);

        command.SetAction(r =>
        {
            string modelPath = r.GetValue(shared.Model)!, outPath = r.GetValue(output)!;
            string? problem = CheckPaths(modelPath, r.GetValue(shared.Data)!, outPath);
            if (problem == null && !outPath.EndsWith(".pt", StringComparison.OrdinalIgnoreCase))
                problem = $"{outPath}: hypernetworks are written as A1111 .pt files";
            if (!TryPrecision(r.GetValue(shared.Precision)!, out var dtype)) problem ??= $"--precision {r.GetValue(shared.Precision)}: fp32 or bf16";
            var layerList = Numbers(r.GetValue(layers)!);
            if (layerList == null) problem ??= $"--layer-structure {r.GetValue(layers)}: comma-separated numbers such as 1,2,1";
            var sizeList = r.GetValue(sizes) is { } sizeText ? Numbers(sizeText) : [];
            if (sizeList == null || sizeList.Any(s => s != Math.Floor(s))) problem ??= $"--sizes {r.GetValue(sizes)}: comma-separated widths such as 768,320,640,1280";
            IReadOnlyList<double>? dropoutList = null;
            if (r.GetValue(dropoutStructure) is { } text)
            {
                dropoutList = Numbers(text);
                if (dropoutList == null) problem ??= $"--dropout-structure {text}: comma-separated probabilities such as 0,0.3,0";
            }
            else if (r.GetValue(dropout) && layerList != null)
                dropoutList = Engine.Hypernetworks.HypernetworkStructure.ParseDropoutStructure(layerList, useDropout: true, lastLayerDropout: false);
            if (problem != null)
            {
                context.Fail(problem);
                return ExitCodes.Usage;
            }
            var options = shared.Apply(r, new HypernetworkTrainingOptions
            {
                DataPath = r.GetValue(shared.Data)!,
                OutputPath = outPath,
                Name = r.GetValue(name),
                LayerStructure = layerList!,
                ActivationFunc = r.GetValue(activation)!,
                LayerNorm = r.GetValue(layerNorm),
                DropoutStructure = dropoutList,
                Sizes = sizeList!.Count == 0 ? null : [.. sizeList.Select(s => (int)s)],
            });
            return RunTraining(context, modelPath, shared.LoadOptions(r, dtype), r.GetValue(shared.Json), (checkpoint, progress) =>
            {
                var result = HypernetworkTrainer.Train(checkpoint, options, progress);
                return (result.OutputPath, result.DataProblems);
            });
        });
        return command;
    }

    private static List<double>? Numbers(string text)
    {
        var values = new List<double>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)) return null;
            values.Add(value);
        }
        return values.Count > 0 ? values : null;
    }

    private static string? CheckPaths(string modelPath, string dataPath, string outPath)
    {
        if (!File.Exists(modelPath)) return $"{modelPath}: no such file";
        if (!Directory.Exists(dataPath)) return $"{dataPath}: no such data folder";
        if (Path.GetFullPath(modelPath) == Path.GetFullPath(outPath)) return $"{outPath}: the output would replace the base model";
        if (!Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(outPath)))) return $"{outPath}: the output folder does not exist";
        return null;
    }

    private static bool TryPrecision(string text, out ScalarType dtype)
    {
        dtype = text == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
        return text is "fp32" or "bf16";
    }

    private static Command CreateLora(CliContext context)
    {
        var model = new Option<string>("--model", "-m") { Description = "Base checkpoint (SD 1.x, 2.x or SDXL single file); never written", Required = true };
        var data = new Option<string>("--data") { Description = "Data folder: N_concept/ subfolders (N repeats), NAME.txt or NAME.caption beside each image", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "The LoRA file to write (.safetensors)", Required = true };
        var config = new Option<string?>("--config") { Description = "LDM yaml / config of the checkpoint (as generate)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "CLIP vocabulary (as generate)" };
        var precision = new Option<string>("--precision") { Description = "fp32 or bf16 for the frozen model (LoRA weights stay float32)", DefaultValueFactory = _ => "fp32" };
        var clipSkip = new Option<int>("--clip-skip") { Description = "CLIP skip (SD1)", DefaultValueFactory = _ => 1 };
        var vae = new Option<string?>("--vae") { Description = "A VAE to encode the images with instead of the checkpoint's" };
        var algo = new Option<string>("--algo") { Description = "lora (kohya networks.lora), or LyCORIS locon, loha, lokr (lycoris.kohya)", DefaultValueFactory = _ => "lora" };
        var rank = new Option<int>("--rank") { Description = "LoRA rank (network_dim)", DefaultValueFactory = _ => 4 };
        var alpha = new Option<double?>("--alpha") { Description = "LoRA alpha (default: the rank, scale 1)" };
        var convRank = new Option<int?>("--conv-rank") { Description = "Rank on 3x3 convolutions (conv_dim; default: the rank for locon/loha/lokr, none for lora; 0: none)" };
        var convAlpha = new Option<double?>("--conv-alpha") { Description = "Alpha on 3x3 convolutions (default: the alpha)" };
        var train = new Option<string>("--train") { Description = "What to train: unet, te or unet,te", DefaultValueFactory = _ => "unet,te" };
        var lr = new Option<double>("--lr") { Description = "Learning rate", DefaultValueFactory = _ => 1e-4 };
        var unetLr = new Option<double?>("--unet-lr") { Description = "U-Net learning rate (default --lr)" };
        var teLr = new Option<double?>("--te-lr") { Description = "Text-encoder learning rate (default --lr)" };
        var schedule = new Option<string>("--lr-schedule") { Description = "constant, constant_with_warmup, linear, cosine, cosine_with_restarts, or A1111 \"0.005:100, 1e-3:1000, 1e-5\"", DefaultValueFactory = _ => "constant" };
        var warmup = new Option<int>("--lr-warmup") { Description = "Warmup steps", DefaultValueFactory = _ => 0 };
        var cycles = new Option<int>("--lr-cycles") { Description = "Cycles of cosine_with_restarts", DefaultValueFactory = _ => 1 };
        var optimizer = new Option<string>("--optimizer") { Description = "adamw or lion", DefaultValueFactory = _ => "adamw" };
        var weightDecay = new Option<double?>("--weight-decay") { Description = "Weight decay (AdamW default 0.01, Lion 0)" };
        var maxGradNorm = new Option<double>("--max-grad-norm") { Description = "Clip gradients to this total norm (0: off)", DefaultValueFactory = _ => 1.0 };
        var maxSteps = new Option<int>("--max-steps") { Description = "Optimizer steps", DefaultValueFactory = _ => 1600 };
        var epochs = new Option<int?>("--epochs") { Description = "Train this many epochs instead (overrides --max-steps, as kohya)" };
        var batch = new Option<int>("--batch") { Description = "Images per micro-batch (one bucket)", DefaultValueFactory = _ => 1 };
        var gradAccum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
        var seed = new Option<long>("--seed") { Description = "Seed of every random choice", DefaultValueFactory = _ => 42 };
        var noiseOffset = new Option<double>("--noise-offset") { Description = "kohya noise offset (e.g. 0.1)", DefaultValueFactory = _ => 0 };
        var minSnr = new Option<double?>("--min-snr-gamma") { Description = "Min-SNR weighting gamma (e.g. 5)" };
        var resolution = new Option<int?>("--resolution") { Description = "Bucket area is resolution^2 (default: the model's default size)" };
        var bucketStep = new Option<int>("--bucket-step") { Description = "Bucket size step in pixels", DefaultValueFactory = _ => 64 };
        var flip = new Option<bool>("--flip") { Description = "Random horizontal flips" };
        var shuffle = new Option<bool>("--shuffle-caption") { Description = "Shuffle comma-separated tags" };
        var keepTokens = new Option<int>("--keep-tokens") { Description = "Leading tags kept in place", DefaultValueFactory = _ => 0 };
        var captionDropout = new Option<double>("--caption-dropout") { Description = "Probability of an empty caption", DefaultValueFactory = _ => 0 };
        var tagDropout = new Option<double>("--tag-dropout") { Description = "Probability of dropping each tag", DefaultValueFactory = _ => 0 };
        var saveEvery = new Option<int>("--save-every") { Description = "Write a resumable checkpoint every N steps", DefaultValueFactory = _ => 0 };
        var resume = new Option<string?>("--resume") { Description = "Continue from the checkpoint folder (OUT.train) of an earlier run" };
        var stateDir = new Option<string?>("--state-dir") { Description = "Where checkpoints and cached latents go (default OUT.train next to --out)" };
        var json = new Option<bool>("--json") { Description = "One JSON line per step on stdout" };
        var sampleEvery = new Option<int>("--sample-every") { Description = "Generate the sample prompts every N steps into samples/ beside --out", DefaultValueFactory = _ => 0 };
        var samplePrompts = new Option<string?>("--sample-prompts") { Description = "kohya prompt file: one prompt per line with --n --w --h --d --s --l" };
        var command = new Command("lora", "Train a kohya-compatible LoRA or LyCORIS network");
        foreach (var option in new Option[] { model, data, output, config, tokenizer, precision, clipSkip, vae, algo, rank, alpha, convRank, convAlpha, train, lr, unetLr, teLr,
            schedule, warmup, cycles, optimizer, weightDecay, maxGradNorm, maxSteps, epochs, batch, gradAccum, seed, noiseOffset, minSnr, resolution, bucketStep,
            flip, shuffle, keepTokens, captionDropout, tagDropout, saveEvery, sampleEvery, samplePrompts, resume, stateDir, json })
            command.Options.Add(option);

        command.SetAction(r =>
        {
            string modelPath = r.GetValue(model)!, outPath = r.GetValue(output)!;
            string? problem = null;
            if (!File.Exists(modelPath)) problem = $"{modelPath}: no such file";
            else if (!Directory.Exists(r.GetValue(data)!)) problem = $"{r.GetValue(data)}: no such data folder";
            else if (Path.GetFullPath(modelPath) == Path.GetFullPath(outPath)) problem = $"{outPath}: the output would replace the base model";
            else if (!LoraNetworkOptions.TryParseAlgorithm(r.GetValue(algo)!, out _)) problem = $"--algo {r.GetValue(algo)}: use lora, locon, loha or lokr";
            else if (r.GetValue(sampleEvery) > 0 && r.GetValue(samplePrompts) is not { } promptFile) problem = "--sample-every needs --sample-prompts FILE";
            else if (r.GetValue(samplePrompts) is { } prompts && !File.Exists(prompts)) problem = $"{prompts}: no such sample prompt file";
            else if (!Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(outPath)))) problem = $"{outPath}: the output folder does not exist";
            var parts = r.GetValue(train)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (parts.Any(p => p is not ("unet" or "te"))) problem ??= $"--train {r.GetValue(train)}: use unet, te or unet,te";
            ScalarType dtype = ScalarType.Float32;
            switch (r.GetValue(precision))
            {
                case "fp32": break;
                case "bf16": dtype = ScalarType.BFloat16; break;
                default: problem ??= $"--precision {r.GetValue(precision)}: fp32 or bf16"; break;
            }
            if (problem != null)
            {
                context.Fail(problem);
                return ExitCodes.Usage;
            }
            var options = new LoraTrainingOptions
            {
                DataPath = r.GetValue(data)!,
                OutputPath = outPath,
                StatePath = r.GetValue(stateDir),
                ResumePath = r.GetValue(resume),
                Algorithm = LoraNetworkOptions.TryParseAlgorithm(r.GetValue(algo)!, out var algorithm) ? algorithm : LoraAlgorithm.Lora,
                Rank = r.GetValue(rank),
                Alpha = r.GetValue(alpha),
                ConvRank = r.GetValue(convRank),
                ConvAlpha = r.GetValue(convAlpha),
                TrainUnet = parts.Contains("unet"),
                TrainTextEncoder = parts.Contains("te"),
                LearningRate = r.GetValue(lr),
                UnetLearningRate = r.GetValue(unetLr),
                TextEncoderLearningRate = r.GetValue(teLr),
                Schedule = r.GetValue(schedule)!,
                WarmupSteps = r.GetValue(warmup),
                ScheduleCycles = r.GetValue(cycles),
                Optimizer = r.GetValue(optimizer)!,
                WeightDecay = r.GetValue(weightDecay),
                MaxGradNorm = r.GetValue(maxGradNorm),
                MaxSteps = r.GetValue(maxSteps),
                Epochs = r.GetValue(epochs),
                BatchSize = r.GetValue(batch),
                GradientAccumulation = r.GetValue(gradAccum),
                Seed = r.GetValue(seed),
                NoiseOffset = r.GetValue(noiseOffset),
                MinSnrGamma = r.GetValue(minSnr),
                Resolution = r.GetValue(resolution),
                BucketStep = r.GetValue(bucketStep),
                FlipAugment = r.GetValue(flip),
                ClipSkip = r.GetValue(clipSkip),
                SaveEvery = r.GetValue(saveEvery),
                SampleEvery = r.GetValue(sampleEvery),
                SamplePromptsPath = r.GetValue(samplePrompts),
                Captions = new CaptionOptions
                {
                    Shuffle = r.GetValue(shuffle),
                    KeepTokens = r.GetValue(keepTokens),
                    CaptionDropoutRate = r.GetValue(captionDropout),
                    TagDropoutRate = r.GetValue(tagDropout),
                },
            };
            var loadOptions = new CheckpointLoadOptions { ConfigPath = r.GetValue(config), TokenizerPath = r.GetValue(tokenizer), DType = dtype, VaePath = r.GetValue(vae) };
            return Run(context, modelPath, loadOptions, options, r.GetValue(json));
        });
        return command;
    }

    private static int Run(CliContext context, string modelPath, CheckpointLoadOptions loadOptions, LoraTrainingOptions options, bool json) =>
        RunTraining(context, modelPath, loadOptions, json, (checkpoint, progress) =>
        {
            var result = LoraTrainer.Train(checkpoint, options, progress);
            return (result.OutputPath, result.DataProblems);
        });

    /// <summary>Loads the base model, runs <paramref name="train"/> with the progress display, and maps bad input to exit 2.</summary>
    internal static int RunTraining(CliContext context, string modelPath, CheckpointLoadOptions loadOptions, bool json,
        Func<StableDiffusionCheckpoint, IProgress<TrainingProgress>, (string OutputPath, IReadOnlyList<string> DataProblems)> train)
    {
        StableDiffusionCheckpoint checkpoint;
        try
        {
            checkpoint = StableDiffusionCheckpoint.Load(modelPath, loadOptions);
            if (checkpoint.Architecture.Family == SharpDiffusion.Inspection.BaseFamily.SDXLRefiner)
            {
                checkpoint.Dispose();
                throw new ArgumentException($"{modelPath}: an SDXL refiner; the trainers take SD 1.x, 2.x and SDXL base checkpoints");
            }
            _ = checkpoint.Tokenizer;
        }
        catch (Exception e) when (e is InvalidModelFileException or FileNotFoundException or Engine.Weights.ModelLoadException or ArgumentException)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }
        using (checkpoint)
        {
            var progress = new SynchronousProgress(p =>
            {
                if (json)
                {
                    context.Output.WriteLine(JsonSerializer.Serialize(new
                    {
                        step = p.Step, total = p.TotalSteps, loss = p.Loss, loss_avg = p.SmoothedLoss, lr = p.LearningRate,
                        it_per_s = p.StepsPerSecond, eta_s = Math.Round(p.Eta.TotalSeconds, 1),
                    }));
                }
                else
                {
                    context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"step {p.Step}/{p.TotalSteps}  loss {p.Loss:F4} (avg {p.SmoothedLoss:F4})  lr {p.LearningRate:G3}  {p.StepsPerSecond:F2} it/s  ETA {p.Eta:hh\\:mm\\:ss}"));
                }
            });
            try
            {
                var (outputPath, problems) = train(checkpoint, progress);
                foreach (var line in problems) context.Error.WriteLine("warning: " + line);
                if (!json) context.Output.WriteLine(outputPath);
                return ExitCodes.Success;
            }
            // A model or data set training cannot go on with is bad input (the exit-code table's 2), like bad usage.
            catch (Exception e) when (e is InvalidModelFileException or InvalidDataException or DirectoryNotFoundException
                or ArgumentException or FormatException)
            {
                context.Fail(e.Message);
                return ExitCodes.Usage;
            }
        }
    }

    /// <summary>Reports on the training thread (Progress&lt;T&gt; would post to the thread pool and reorder lines).</summary>
    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
