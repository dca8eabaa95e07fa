using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Tokenization;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using SkiaSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// <c>train checkpoint</c>: a model built from scratch from a tiny config (fresh weights, fitted tokenizer, config
/// beside), its VAE and U-Net stages, resume, and the result loaded by <c>inspect</c> and <c>generate</c> like any
/// checkpoint.
/// </summary>
public class CheckpointTrainerTests
{
    /// <summary>A tiny architecture in the sharp-emoji config layout (16 px images, 2x VAE, 2-level U-Net, 2-layer CLIP).</summary>
    private const string TinyConfig = """
    {
     "name": "tiny-scratch", "default_size": 16,
     "text_encoder": { "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 77 },
     "ldm_config": { "model": { "target": "ldm.models.diffusion.ddpm.LatentDiffusion", "params": {
       "linear_start": 0.00085, "linear_end": 0.012, "timesteps": 1000, "parameterization": "eps", "scale_factor": 1.0,
       "unet_config": { "target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": {
         "in_channels": 4, "out_channels": 4, "model_channels": 32, "attention_resolutions": [2], "num_res_blocks": 1,
         "channel_mult": [1, 2], "num_heads": 4, "use_spatial_transformer": true, "transformer_depth": 1, "context_dim": 32, "legacy": false } },
       "first_stage_config": { "target": "ldm.models.autoencoder.AutoencoderKL", "params": { "embed_dim": 4, "ddconfig": {
         "double_z": true, "z_channels": 4, "resolution": 16, "in_channels": 3, "out_ch": 3, "ch": 32, "ch_mult": [1, 2],
         "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0 } } } } } }
    }
    """;

    private static (string Data, string Config) MakeData(TempDir dir)
    {
        Directory.CreateDirectory(dir.File("data/1_shapes"));
        var colours = new[] { ("red square", new SKColor(220, 30, 20)), ("green square", new SKColor(20, 200, 40)), ("blue square", new SKColor(20, 40, 220)) };
        foreach (var (name, colour) in colours)
        {
            string stem = dir.File("data/1_shapes/" + name.Replace(' ', '-'));
            ScheduleAndDataTests.WriteImage(stem + ".png", 16, 16, colour);
            File.WriteAllText(stem + ".txt", $"{name}\nan emoji of a {name}\n");
        }
        File.WriteAllText(dir.File("tiny.json"), TinyConfig);
        return (dir.File("data"), dir.File("tiny.json"));
    }

    /// <summary>A fresh model (weights, fitted tokenizer, config) after one VAE step, written to <paramref name="output"/>.</summary>
    private static void TrainOneVaeStep(string data, string config, string output)
    {
        var (code, _, stderr) = Run("train", "checkpoint", "--from-scratch", "--config", config, "--data", data, "--out", output,
            "--stage", "vae", "--max-steps", "1", "--batch", "3", "--vocab-size", "600");
        Assert.True(code == ExitCodes.Success, stderr);
    }

    /// <summary>Every floating-point tensor of a checkpoint as float32 values, by name.</summary>
    internal static Dictionary<string, float[]> Tensors(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Tensors.Where(t => t.DType != SharpDiffusion.Formats.TensorDType.I64).ToDictionary(t => t.Name, t =>
        {
            using var v = TensorReading.Read(file, t, ScalarType.Float32);
            return v.data<float>().ToArray();
        });
    }

    [Fact]
    public void FromScratchStagesMakeACheckpointThatInspectExplainsAndGenerateRuns()
    {
        using var dir = new TempDir();
        var (data, config) = MakeData(dir);
        var (code, _, stderr) = Run("train", "checkpoint", "--from-scratch", "--config", config, "--data", data, "--out", dir.File("vae.safetensors"),
            "--stage", "vae", "--max-steps", "3", "--batch", "2", "--lr", "1e-3", "--vocab-size", "600", "--seed", "3");
        Assert.True(code == ExitCodes.Success, stderr);
        Assert.True(File.Exists(dir.File("vae.init.safetensors")), "the fresh weights are kept beside the output");
        Assert.True(File.Exists(dir.File("vae.tokenizer/vocab.json")) && File.Exists(dir.File("vae.tokenizer/merges.txt")));
        var yaml = File.ReadAllText(dir.File("vae.yaml"));
        Assert.Contains("scale_factor", yaml);
        Assert.DoesNotContain("\"scale_factor\": 1.0", yaml); // replaced by 1/std of the trained VAE's latents

        // Only the VAE moved in the vae stage.
        var init = Tensors(dir.File("vae.init.safetensors"));
        var afterVae = Tensors(dir.File("vae.safetensors"));
        Assert.Contains(afterVae, p => p.Key.StartsWith("first_stage_model.") && !p.Value.SequenceEqual(init[p.Key]));
        Assert.All(afterVae.Where(p => !p.Key.StartsWith("first_stage_model.")), p => Assert.True(p.Value.SequenceEqual(init[p.Key]), p.Key));

        (code, _, stderr) = Run("train", "checkpoint", "--from-scratch", "--model", dir.File("vae.safetensors"), "--data", data,
            "--out", dir.File("model.safetensors"), "--stage", "unet", "--train", "unet,te", "--max-steps", "3", "--batch", "3", "--lr", "1e-3", "--ema-decay", "0.9");
        Assert.True(code == ExitCodes.Success, stderr);
        var model = Tensors(dir.File("model.safetensors"));
        Assert.All(model.Where(p => p.Key.StartsWith("first_stage_model.")), p => Assert.True(p.Value.SequenceEqual(afterVae[p.Key]), p.Key));
        Assert.Contains(model, p => p.Key.StartsWith("model.diffusion_model.") && !p.Value.SequenceEqual(afterVae[p.Key]));
        Assert.Contains(model, p => p.Key.StartsWith("cond_stage_model.") && !p.Value.SequenceEqual(afterVae[p.Key]));
        using (var file = SafetensorsFile.Open(dir.File("model.safetensors")))
        {
            int tokens = System.Text.Json.JsonDocument.Parse(File.ReadAllText(dir.File("model.tokenizer/vocab.json"))).RootElement.EnumerateObject().Count();
            Assert.Equal(tokens, file.Tensors.Single(t => t.Name.EndsWith("token_embedding.weight")).Shape[0]); // the fitted vocabulary's rows, not CLIP's 49,408
            Assert.True(tokens < 600);
        }
        Assert.True(File.Exists(dir.File("model.yaml")) && File.Exists(dir.File("model.tokenizer/vocab.json")), "config and tokenizer follow the model");

        string stdout;
        (code, stdout, stderr) = Run("inspect", dir.File("model.safetensors"));
        Assert.True(code == ExitCodes.Success, stderr);
        Assert.Contains("checkpoint", stdout);
        Assert.Contains("sd1", stdout);
        Assert.Contains("text_encoder+unet+vae", stdout);

        // generate finds the tokenizer and config beside the file and uses the config's size.
        (code, _, stderr) = Run("generate", "--model", dir.File("model.safetensors"), "--prompt", "red square", "--steps", "2", "--seed", "1", "--out", dir.File("out.png"));
        Assert.True(code == ExitCodes.Success, stderr);
        using var image = SKBitmap.Decode(dir.File("out.png"));
        Assert.Equal((16, 16), (image.Width, image.Height));
    }

    [Fact]
    public void ExtendedModelTrainersUseTheFittedVocabularysOwnTokenIds()
    {
        using var dir = new TempDir();
        var (data, config) = MakeData(dir);
        string model = dir.File("base.safetensors");
        TrainOneVaeStep(data, config, model);
        using (var checkpoint = StableDiffusionCheckpoint.Load(model))
        {
            var tokenizer = checkpoint.Tokenizer;
            Assert.True(tokenizer.BosId < 600 && tokenizer.EosId < 600, $"fitted ids {tokenizer.BosId}/{tokenizer.EosId}");
            var row = CaptionTokenIds.ForCaption(checkpoint, "red square");
            var body = tokenizer.Encode("red square");
            Assert.Equal(tokenizer.BosId, row[0]);
            Assert.Equal(body.Select(t => (long)t), row.Skip(1).Take(body.Count));
            Assert.All(row.Skip(1 + body.Count), id => Assert.Equal(tokenizer.EosId, id)); // EOS, then EOS padding (SD 1.x)
        }

        // CLIP's 49406/49407 would index past the 600-row token embedding: each trainer must run on this model.
        var (code, _, stderr) = Run("train", "lora", "--model", model, "--data", data, "--out", dir.File("l.safetensors"), "--rank", "2",
            "--max-steps", "1", "--resolution", "16", "--bucket-step", "8", "--train", "unet,te");
        Assert.True(code == ExitCodes.Success, stderr);
        (code, _, stderr) = Run("train", "embedding", "--model", model, "--data", data, "--out", dir.File("e.safetensors"), "--name", "shp",
            "--vectors", "2", "--init-text", "square", "--max-steps", "1", "--resolution", "16", "--bucket-step", "8");
        Assert.True(code == ExitCodes.Success, stderr);
        (code, _, stderr) = Run("train", "hypernetwork", "--model", model, "--data", data, "--out", dir.File("h.pt"), "--sizes", "32",
            "--max-steps", "1", "--resolution", "16", "--bucket-step", "8");
        Assert.True(code == ExitCodes.Success, stderr);
        Assert.True(File.Exists(dir.File("l.safetensors")) && File.Exists(dir.File("e.safetensors")) && File.Exists(dir.File("h.pt")));

        // A template whose prompts never hold the name trains nothing: one line, exit 2 (not a libtorch backward error).
        File.WriteAllText(dir.File("plain.txt"), "[filewords]\n");
        (code, _, stderr) = Run("train", "embedding", "--model", model, "--data", data, "--out", dir.File("x.safetensors"), "--name", "zqx",
            "--template", dir.File("plain.txt"), "--max-steps", "1", "--resolution", "16", "--bucket-step", "8");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("plain.txt: the prompt", stderr);
        Assert.Contains("holds no \"zqx\"", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public void ResumedUnetStageEndsBitIdenticalToAStraightRun()
    {
        using var dir = new TempDir();
        var (data, config) = MakeData(dir);
        TrainOneVaeStep(data, config, dir.File("base.safetensors"));

        CheckpointTrainingOptions Options(string output) => new()
        {
            DataPath = data, OutputPath = output, Stage = CheckpointTrainingStage.Unet, TrainTextEncoder = true, FromScratch = true,
            MaxSteps = 4, BatchSize = 2, GradientAccumulation = 2, LearningRate = 1e-3, EmaDecay = 0.9, Seed = 5, CaptionDropout = 0.3,
        };
        StableDiffusionCheckpoint Load() => StableDiffusionCheckpoint.Load(dir.File("base.safetensors"));
        using (var model = Load()) CheckpointTrainer.Train(model, Options(dir.File("straight.safetensors")));
        CheckpointTrainingResult first;
        using (var model = Load()) first = CheckpointTrainer.Train(model, Options(dir.File("resumed.safetensors")), stopAfterStep: 2);
        Assert.False(File.Exists(dir.File("resumed.safetensors")));
        using (var model = Load())
        {
            var second = CheckpointTrainer.Train(model, Options(dir.File("resumed.safetensors")) with { ResumePath = first.StatePath });
            Assert.Equal((4L, 2L), (second.Step, second.StartStep));
        }
        var a = Tensors(dir.File("straight.safetensors"));
        var b = Tensors(dir.File("resumed.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, values) in a) Assert.True(values.SequenceEqual(b[name]), $"{name} differs after resume");
    }

    [Fact]
    public void VaeStageDrivesTheReconstructionLossDown()
    {
        using var dir = new TempDir();
        var (data, config) = MakeData(dir);
        TrainOneVaeStep(data, config, dir.File("base.safetensors"));
        var losses = new List<double>();
        using var model = StableDiffusionCheckpoint.Load(dir.File("base.init.safetensors"));
        CheckpointTrainer.Train(model, new CheckpointTrainingOptions
        {
            DataPath = data, OutputPath = dir.File("vae.safetensors"), Stage = CheckpointTrainingStage.Vae, MaxSteps = 40, BatchSize = 3,
            LearningRate = 2e-3, Seed = 1,
        }, new Progress(p => losses.Add(p.Loss)));
        Assert.Equal(40, losses.Count);
        Assert.True(losses.TakeLast(5).Average() < 0.5 * losses.Take(3).Average(), $"L1 went from {losses[0]:F3} to {losses[^1]:F3}");
    }

    [Fact]
    public void TextStageTeachesTheEncoderWhichImageACaptionNamesAndChangesNothingElse()
    {
        using var dir = new TempDir();
        var (data, config) = MakeData(dir);
        TrainOneVaeStep(data, config, dir.File("vae.safetensors"));
        var losses = new List<double>();
        using (var model = StableDiffusionCheckpoint.Load(dir.File("vae.safetensors")))
        {
            CheckpointTrainer.Train(model, new CheckpointTrainingOptions
            {
                DataPath = data, OutputPath = dir.File("text.safetensors"), Stage = CheckpointTrainingStage.Text, FromScratch = true,
                MaxSteps = 60, BatchSize = 3, LearningRate = 3e-3, Seed = 1,
            }, new Progress(p => losses.Add(p.Loss)));
        }
        // Three images: chance is ln 3 = 1.10 nats; two caption lines per image must both land on their own image.
        Assert.InRange(losses.Take(3).Average(), 0.5, 3.0);
        Assert.True(losses.TakeLast(5).Average() < 0.1, $"cross-entropy went from {losses[0]:F3} to {losses[^1]:F3}");

        var before = Tensors(dir.File("vae.safetensors"));
        var after = Tensors(dir.File("text.safetensors"));
        Assert.Equal(before.Keys.Order(), after.Keys.Order()); // the per-image codes stay in the state, out of the checkpoint
        var changed = before.Keys.Where(k => !before[k].SequenceEqual(after[k])).ToList();
        Assert.NotEmpty(changed);
        Assert.All(changed, name => Assert.StartsWith("cond_stage_model.", name));
        Assert.Contains(changed, name => name.Contains(".encoder.layers.", StringComparison.Ordinal));

        // The CLI takes the stage by name and generates from the result.
        var (code, _, stderr) = Run("train", "checkpoint", "--from-scratch", "--model", dir.File("vae.safetensors"), "--data", data,
            "--out", dir.File("text2.safetensors"), "--stage", "text", "--max-steps", "2", "--batch", "3");
        Assert.True(code == ExitCodes.Success, stderr);
        Assert.True(File.Exists(dir.File("text2.safetensors")));
    }

    [Fact]
    public void BadUsageIsOneLineAndExitCodeTwo()
    {
        using var dir = new TempDir();
        var (data, config) = MakeData(dir);
        var (code, _, stderr) = Run("train", "checkpoint", "--from-scratch", "--data", data, "--out", dir.File("m.safetensors"));
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--from-scratch needs --config", stderr);
        (code, _, stderr) = Run("train", "checkpoint", "--from-scratch", "--config", config, "--data", data, "--out", dir.File("m.ckpt"));
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(".safetensors", stderr);
        (code, _, stderr) = Run("train", "checkpoint", "--from-scratch", "--config", config, "--data", data, "--out", dir.File("m.safetensors"), "--stage", "clip");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--stage clip", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    private sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}

/// <summary>The BPE vocabulary fitted to captions: CLIP's symbols and pre-tokenizer, so the CLIP tokenizer runs it unchanged.</summary>
public class BytePairVocabularyFitterTests
{
    private static readonly string[] Corpus = ["red apple", "green apple", "an emoji of a red apple", "grinning face", "grinning cat", "red heart", "red apple emoji"];

    [Fact]
    public void FrequentWordsBecomeSingleTokensAndEveryTextStaysEncodable()
    {
        // A budget larger than the corpus needs stops once every word is one token.
        var vocabulary = BytePairVocabularyFitter.Fit(Corpus, 5000);
        Assert.True(vocabulary.Encoder.Count < 5000);
        var tokenizer = new ClipTokenizer(vocabulary, htmlUnescape: false);
        Assert.Equal(["red</w>", "apple</w>"], tokenizer.Tokenize("Red  Apple"));
        Assert.Equal(["an</w>", "emoji</w>", "of</w>", "a</w>", "grinning</w>", "cat</w>"], tokenizer.Tokenize("an emoji of a grinning cat"));
        int count = vocabulary.Encoder.Count;
        Assert.Equal((count - 2, count - 1), (tokenizer.BosId, tokenizer.EosId)); // the specials come last, as in CLIP
        // Text never seen falls back to byte symbols rather than failing.
        var unseen = tokenizer.Tokenize("zebra ✨");
        Assert.StartsWith("zebra</w>", string.Concat(unseen));
        Assert.Equal(unseen.Count, tokenizer.Encode("zebra ✨").Count);

        // A tight budget is met exactly: bytes, word-final bytes, merges, specials.
        var small = BytePairVocabularyFitter.Fit(Corpus, 520);
        Assert.Equal(520, small.Encoder.Count);
        Assert.Equal(520 - BytePairVocabularyFitter.MinimumSize, small.MergeRanks.Count);
    }

    [Fact]
    public void WrittenVocabularyLoadsBackWithTheSameIds()
    {
        using var dir = new TempDir();
        var vocabulary = BytePairVocabularyFitter.Fit(Corpus, 650);
        BytePairVocabularyFitter.Write(vocabulary, dir.Path);
        var loaded = new ClipTokenizer(BytePairVocabulary.Load(dir.Path), htmlUnescape: false);
        var original = new ClipTokenizer(vocabulary, htmlUnescape: false);
        foreach (var text in Corpus.Append("an unseen caption, 42!")) Assert.Equal(original.Encode(text), loaded.Encode(text));
        // Deterministic: the same corpus gives the same merges.
        Assert.Equal(vocabulary.MergeRanks.OrderBy(p => p.Value).Select(p => p.Key), BytePairVocabularyFitter.Fit(Corpus, 650).MergeRanks.OrderBy(p => p.Value).Select(p => p.Key));
    }

    [Fact]
    public void TooSmallAVocabularyIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => BytePairVocabularyFitter.Fit(Corpus, 100));
        Assert.Contains("at least 514", e.Message);
    }
}
