using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Tests.ExtraNetworks;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using SkiaSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// Whole training runs on the tiny SD1 model (16x16 images, a few steps): an interrupted run resumed from its
/// checkpoint ends bit for bit where an uninterrupted one does; the CLI's LoRA is classified as a kohya LoRA by
/// inspect and changes what generate produces.
/// </summary>
public class LoraTrainerTests
{
    private static string MakeData(TempDir dir)
    {
        Directory.CreateDirectory(dir.File("data/2_sks toy"));
        Directory.CreateDirectory(dir.File("data/1_blue thing"));
        ScheduleAndDataTests.WriteImage(dir.File("data/2_sks toy/a.png"), 16, 16, new SKColor(200, 40, 10));
        File.WriteAllText(dir.File("data/2_sks toy/a.txt"), "sks toy, red, small");
        ScheduleAndDataTests.WriteImage(dir.File("data/2_sks toy/b.png"), 20, 20, new SKColor(180, 60, 20));
        ScheduleAndDataTests.WriteImage(dir.File("data/1_blue thing/c.png"), 16, 16, new SKColor(10, 40, 200));
        return dir.File("data");
    }

    private static LoraTrainingOptions Options(string data, string output) => new()
    {
        DataPath = data,
        OutputPath = output,
        Rank = 2,
        Alpha = 1,
        LearningRate = 1e-2,
        Schedule = "cosine",
        WarmupSteps = 1,
        MaxSteps = 4,
        BatchSize = 1,
        GradientAccumulation = 2,
        Seed = 11,
        NoiseOffset = 0.05,
        MinSnrGamma = 5,
        Resolution = 16,
        BucketStep = 8,
        Captions = new CaptionOptions { Shuffle = true, KeepTokens = 1 },
    };

    private static Dictionary<string, float[]> Tensors(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Tensors.ToDictionary(t => t.Name, t =>
        {
            using var v = TensorReading.Read(file, t, ScalarType.Float32);
            return v.data<float>().ToArray();
        });
    }

    [Fact]
    public void ResumingFromAHalfwayCheckpointEndsBitIdenticalToAStraightRun()
    {
        using var dir = new TempDir();
        string data = MakeData(dir);
        using var model = TinyModel.Load();

        var straight = LoraTrainer.Train(model, Options(data, dir.File("straight.safetensors")));
        Assert.Equal(4, straight.Steps);
        Assert.Equal(60, straight.Modules); // kohya's default targets in tiny_sd1 (the golden LoRA has the same 60)
        var first = LoraTrainer.Train(model, Options(data, dir.File("resumed.safetensors")), stopAfterStep: 2);
        Assert.Equal(2, first.Steps);
        Assert.False(File.Exists(dir.File("resumed.safetensors")));
        var second = LoraTrainer.Train(model, Options(data, dir.File("resumed.safetensors")) with { ResumePath = first.StatePath });
        Assert.Equal((4L, 2L), (second.Steps, second.ResumedFrom));

        var a = Tensors(dir.File("straight.safetensors"));
        var b = Tensors(dir.File("resumed.safetensors"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, values) in a) Assert.True(values.SequenceEqual(b[name]), $"{name} differs after resume");
        // Training moved the weights: lora_up starts at zero.
        Assert.Contains(a, p => p.Key.EndsWith(".lora_up.weight") && p.Value.Any(x => x != 0));
    }

    [Fact]
    public void ResumeRefusesACheckpointOfOtherSettings()
    {
        using var dir = new TempDir();
        string data = MakeData(dir);
        using var model = TinyModel.Load();
        var first = LoraTrainer.Train(model, Options(data, dir.File("x.safetensors")) with { TrainTextEncoder = false }, stopAfterStep: 1);
        var e = Assert.Throws<SharpDiffusion.Formats.InvalidModelFileException>(() =>
            LoraTrainer.Train(model, Options(data, dir.File("x.safetensors")) with { TrainTextEncoder = false, Rank = 3, ResumePath = first.StatePath }));
        Assert.Contains("other settings", e.Message);
    }

    [Fact]
    public void TrainedLoraIsAKohyaLoraThatInspectClassifiesAndGenerateApplies()
    {
        using var dir = new TempDir();
        string data = MakeData(dir);
        Directory.CreateDirectory(dir.File("models/Lora"));
        string lora = dir.File("models/Lora/toy.safetensors");
        var (code, stdout, stderr) = Run("train", "lora", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"),
            "--data", data, "--out", lora, "--rank", "4", "--alpha", "2", "--lr", "5e-2", "--max-steps", "3", "--seed", "3",
            "--resolution", "16", "--bucket-step", "8", "--json");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.All(lines, l => Assert.Contains("\"loss\":", l));
        Assert.Contains("\"step\":3", lines[2]);

        using (var file = SafetensorsFile.Open(lora))
        {
            Assert.Equal("networks.lora", file.Metadata["ss_network_module"]);
            Assert.Equal("4", file.Metadata["ss_network_dim"]);
            Assert.Equal("2", file.Metadata["ss_network_alpha"]);
            Assert.Equal("sd_v1", file.Metadata["ss_base_model_version"]);
            Assert.Equal("3", file.Metadata["ss_steps"]);
            Assert.Equal("5", file.Metadata["ss_num_train_images"]); // a, b with 2 repeats + c with 1
            Assert.Contains("\"sks toy\"", file.Metadata["ss_tag_frequency"]);
            Assert.Equal(64, file.Metadata["sshs_model_hash"].Length);
            Assert.Contains(file.Tensors, t => t.Name == "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight");
            Assert.Contains(file.Tensors, t => t.Name == "lora_unet_down_blocks_1_attentions_0_proj_in.lora_up.weight");
        }

        var (inspectCode, inspectOut, inspectErr) = Run("inspect", lora, "--json");
        Assert.True(inspectCode == 0, inspectErr);
        Assert.Contains("\"kind\":\"lora\"", inspectOut);
        Assert.Contains("\"style\":\"kohya\"", inspectOut);
        Assert.Contains("\"rank\":4", inspectOut);

        string[] Generate(string prompt, string latents) => ["generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"), "--width", "16", "--height", "16",
            "--steps", "2", "--sampler", "Euler", "--seed", "5", "--models-dir", dir.File("models"), "--prompt", prompt,
            "--out", dir.File(Path.GetFileNameWithoutExtension(latents) + ".png"), "--save-latents", latents];
        var plain = Run(Generate("sks toy", dir.File("plain.safetensors")));
        Assert.True(plain.Code == 0, plain.Stderr);
        var withLora = Run(Generate("sks toy <lora:toy:1>", dir.File("lora.safetensors")));
        Assert.True(withLora.Code == 0, withLora.Stderr);
        var x = Tensors(dir.File("plain.safetensors"))["latents"];
        var y = Tensors(dir.File("lora.safetensors"))["latents"];
        double maxDiff = x.Zip(y, (p, q) => Math.Abs(p - q)).Max();
        Assert.True(maxDiff > 1e-4, $"the LoRA changed the latents by only {maxDiff:E2}");
    }

    [Fact]
    public void BadUsageIsOneLineAndExitCode2()
    {
        using var dir = new TempDir();
        var (code, _, stderr) = Run("train", "lora", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--data", dir.File("none"), "--out", dir.File("o.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("no such data folder", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        (code, _, stderr) = Run("train", "lora", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--data", dir.Path, "--out", TestPaths.GoldenFile("tiny_sd1.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("replace the base model", stderr);
    }
}
