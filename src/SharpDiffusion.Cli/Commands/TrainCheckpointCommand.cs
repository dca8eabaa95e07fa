using System.CommandLine;
using System.Globalization;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion train checkpoint</c>: full fine-tune of a checkpoint's U-Net (and text encoder), or with
/// <c>--from-scratch --config C</c> a new model: the first run writes fresh weights, the fitted tokenizer and the
/// config beside --out, and each <c>--stage</c> (vae, text, then unet) trains its part. Exit codes as the other trainers.
/// </summary>
internal static class TrainCheckpointCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Option<string?>("--model", "-m") { Description = "Checkpoint to train (never written); with --from-scratch, none" };
        var data = new Option<string>("--data") { Description = "Data folder (N_concept/ subfolders, captions in NAME.txt; every line a caption variant)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "The checkpoint to write (.safetensors; its .yaml config and .tokenizer/ go beside it)", Required = true };
        var fromScratch = new Option<bool>("--from-scratch") { Description = "A new model: without --model, fresh weights built from --config (a json model config with a text_encoder section); with --model (the vae stage's output), the U-Net's output layers start at zero" };
        var config = new Option<string?>("--config") { Description = "Model config: with --from-scratch the architecture to build; else the checkpoint's LDM config (as generate)" };
        var vocabSize = new Option<int>("--vocab-size") { Description = "--from-scratch: tokens of the BPE vocabulary fitted to the captions", DefaultValueFactory = _ => 4096 };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "CLIP vocabulary (as generate)" };
        var stage = new Option<string>("--stage") { Description = "vae (autoencoder), text (text encoder alone: captions told apart by image, before the U-Net) or unet (denoiser on frozen latents)", DefaultValueFactory = _ => "unet" };
        var train = new Option<string>("--train") { Description = "unet stage: unet or unet,te", DefaultValueFactory = _ => "unet" };
        var lr = new Option<double>("--lr") { Description = "Learning rate", DefaultValueFactory = _ => 1e-4 };
        var teLr = new Option<double?>("--te-lr") { Description = "Text encoder learning rate (default --lr)" };
        var schedule = new Option<string>("--lr-schedule") { Description = "constant, constant_with_warmup, linear, cosine, cosine_with_restarts, or A1111's \"rate:step, ...\"", DefaultValueFactory = _ => "constant" };
        var warmup = new Option<int>("--lr-warmup") { Description = "Warmup steps", DefaultValueFactory = _ => 0 };
        var optimizer = new Option<string>("--optimizer") { Description = "adamw or lion", DefaultValueFactory = _ => "adamw" };
        var weightDecay = new Option<double>("--weight-decay") { Description = "Decoupled weight decay", DefaultValueFactory = _ => 0.01 };
        var maxGradNorm = new Option<double>("--max-grad-norm") { Description = "Gradient clipping (0: none)", DefaultValueFactory = _ => 1.0 };
        var maxSteps = new Option<int>("--max-steps") { Description = "Optimizer steps", DefaultValueFactory = _ => 1000 };
        var batch = new Option<int>("--batch") { Description = "Images per micro-batch", DefaultValueFactory = _ => 16 };
        var gradAccum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
        var seed = new Option<long>("--seed") { Description = "Seed of the fresh weights and of every random choice", DefaultValueFactory = _ => 42 };
        var resolution = new Option<int?>("--resolution") { Description = "Training size in pixels (default: the model's)" };
        var captionDropout = new Option<double>("--caption-dropout") { Description = "Share of empty captions (for classifier-free guidance)", DefaultValueFactory = _ => 0.1 };
        var firstLine = new Option<bool>("--first-caption-line") { Description = "Use only the first caption line (kohya); default: a random line per step" };
        var ema = new Option<double>("--ema-decay") { Description = "Keep an EMA of the weights (e.g. 0.999) and write it (0: none)", DefaultValueFactory = _ => 0 };
        var minSnr = new Option<double?>("--min-snr-gamma") { Description = "Min-SNR loss weighting" };
        var noiseOffset = new Option<double>("--noise-offset") { Description = "Noise offset", DefaultValueFactory = _ => 0 };
        var klWeight = new Option<double>("--kl-weight") { Description = "vae stage: KL weight (LDM: 1e-6)", DefaultValueFactory = _ => 1e-6 };
        var crop = new Option<int?>("--crop") { Description = "vae stage: train on random crops of this many pixels (faster; the VAE is convolutional)" };
        var temperature = new Option<double>("--temperature") { Description = "text stage: softmax temperature of the caption-to-image similarities", DefaultValueFactory = _ => 0.07 };
        var savePrecision = new Option<string>("--save-precision") { Description = "fp32, fp16 or bf16 weights in the written checkpoint", DefaultValueFactory = _ => "fp32" };
        var saveEvery = new Option<int>("--save-every") { Description = "Write a resumable checkpoint every N steps", DefaultValueFactory = _ => 0 };
        var resume = new Option<string?>("--resume") { Description = "Continue from the state folder (OUT.train) of an earlier run" };
        var stateDir = new Option<string?>("--state-dir") { Description = "Where resumable state goes (default OUT.train)" };
        var json = new Option<bool>("--json") { Description = "One JSON line per step on stdout" };
        var command = new Command("checkpoint", "Train a checkpoint: full fine-tune, or a new model from scratch in stages (vae, text, unet)");
        foreach (var option in new Option[] { model, data, output, fromScratch, config, vocabSize, tokenizer, stage, train, lr, teLr, schedule, warmup,
                     optimizer, weightDecay, maxGradNorm, maxSteps, batch, gradAccum, seed, resolution, captionDropout, firstLine, ema, minSnr,
                     noiseOffset, klWeight, crop, temperature, savePrecision, saveEvery, resume, stateDir, json })
            command.Options.Add(option);

        command.SetAction(r =>
        {
            string outPath = r.GetValue(output)!, dataPath = r.GetValue(data)!;
            string? modelPath = r.GetValue(model), configPath = r.GetValue(config);
            bool scratch = r.GetValue(fromScratch);
            var parts = r.GetValue(train)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            string? problem = null;
            if (!Directory.Exists(dataPath)) problem = $"{dataPath}: no such data folder";
            else if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) problem = $"{outPath}: checkpoints are written as .safetensors";
            else if (!Directory.Exists(Path.GetDirectoryName(Path.GetFullPath(outPath)))) problem = $"{outPath}: the output folder does not exist";
            else if (scratch && modelPath == null && configPath == null) problem = "--from-scratch needs --config (the architecture to build) or --model (an earlier stage's output)";
            else if (scratch && modelPath == null && !File.Exists(configPath!)) problem = $"{configPath}: no such config";
            else if (!scratch && modelPath == null) problem = "--model is required (or --from-scratch --config C)";
            else if (modelPath != null && !File.Exists(modelPath) && !Directory.Exists(modelPath)) problem = $"{modelPath}: no such file";
            else if (modelPath != null && Path.GetFullPath(modelPath) == Path.GetFullPath(outPath)) problem = $"{outPath}: the output would replace the model it trains";
            if (parts.Length == 0 || parts.Any(p => p is not ("unet" or "te")) || !parts.Contains("unet")) problem ??= $"--train {r.GetValue(train)}: unet or unet,te";
            if (r.GetValue(stage) is not ("vae" or "text" or "unet")) problem ??= $"--stage {r.GetValue(stage)}: vae, text or unet";
            TensorDType savedAs = TensorDType.F32;
            try { savedAs = Engine.Diagnostics.RandomModel.ParsePrecision(r.GetValue(savePrecision)!); }
            catch (ArgumentException e) { problem ??= "--save-precision: " + e.Message; }
            if (problem != null)
            {
                context.Fail(problem);
                return ExitCodes.Usage;
            }

            var stageValue = r.GetValue(stage) switch
            {
                "vae" => CheckpointTrainingStage.Vae,
                "text" => CheckpointTrainingStage.Text,
                _ => CheckpointTrainingStage.Unet,
            };
            bool buildsFreshModel = scratch && modelPath == null;
            if (buildsFreshModel)
            {
                // The fresh weights are written once, beside the output, and then trained like any checkpoint.
                modelPath = Path.ChangeExtension(Path.GetFullPath(outPath), null) + ".init.safetensors";
                if (!File.Exists(modelPath))
                {
                    try
                    {
                        var captions = TrainingDataset.Scan(dataPath, new AspectRatioBuckets(64, 8)).Images
                            .SelectMany(TrainingDataset.CaptionLines);
                        var arch = ScratchCheckpoint.Create(configPath!, captions, modelPath, r.GetValue(vocabSize), r.GetValue(seed));
                        context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"fresh model {modelPath}: vocabulary {arch.TextVocab} tokens, text encoder {arch.TextWidth}x{arch.TextLayers}"));
                    }
                    catch (Exception e) when (e is InvalidModelFileException or ArgumentException or IOException)
                    {
                        context.Fail(e.Message);
                        return ExitCodes.Usage;
                    }
                }
            }

            var options = new CheckpointTrainingOptions
            {
                DataPath = dataPath,
                OutputPath = outPath,
                Stage = stageValue,
                TrainTextEncoder = parts.Contains("te"),
                FromScratch = scratch,
                MaxSteps = r.GetValue(maxSteps),
                BatchSize = r.GetValue(batch),
                GradientAccumulation = r.GetValue(gradAccum),
                LearningRate = r.GetValue(lr),
                TextEncoderLearningRate = r.GetValue(teLr),
                Schedule = r.GetValue(schedule)!,
                WarmupSteps = r.GetValue(warmup),
                Optimizer = r.GetValue(optimizer)!,
                WeightDecay = r.GetValue(weightDecay),
                MaxGradNorm = r.GetValue(maxGradNorm),
                Seed = r.GetValue(seed),
                Resolution = r.GetValue(resolution),
                CaptionDropout = r.GetValue(captionDropout),
                RandomCaptionLine = !r.GetValue(firstLine),
                EmaDecay = r.GetValue(ema),
                MinSnrGamma = r.GetValue(minSnr),
                NoiseOffset = r.GetValue(noiseOffset),
                KlWeight = r.GetValue(klWeight),
                Crop = r.GetValue(crop),
                Temperature = r.GetValue(temperature),
                SavePrecision = savedAs,
                SaveEvery = r.GetValue(saveEvery),
                ResumePath = r.GetValue(resume),
                StatePath = r.GetValue(stateDir),
            };
            // A model from scratch reads its own config beside it; --config there named the architecture instead.
            var loadOptions = new CheckpointLoadOptions { ConfigPath = buildsFreshModel ? null : configPath, TokenizerPath = r.GetValue(tokenizer) };
            return TrainCommand.RunTraining(context, modelPath!, loadOptions, r.GetValue(json), (checkpoint, progress) =>
            {
                var result = CheckpointTrainer.Train(checkpoint, options, progress);
                if (result.ScaleFactor is double scale)
                    context.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"latent scale factor 1/std = {scale:F5} (written to the config)"));
                return (result.OutputPath, result.DataProblems);
            });
        });
        return command;
    }
}
