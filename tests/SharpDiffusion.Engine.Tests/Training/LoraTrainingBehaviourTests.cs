using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.ExtraNetworks;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Engine.Text.Tokenization;
using SkiaSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>What training does to a model: overfitting one image lowers its loss and moves generation toward it; SD2-v trains its U-Net with v targets.</summary>
public class LoraTrainingBehaviourTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>The eps loss of the image at four fixed timesteps with fixed noise (the same draws before and after).</summary>
    private static double FixedLoss(StableDiffusionCheckpoint model, string image, string caption)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x0 = model.Vae.EncodeToLatents(TrainingImageLoader.Load(image, 16, 16)).repeat(4, 1, 1, 1);
        using var generator = new Generator(99);
        var noise = randn(x0.shape, ScalarType.Float32, generator: generator);
        var t = tensor(new long[] { 50, 250, 450, 650 });
        var tokens = model.Tokenizer.Encode(caption);
        var ids = Enumerable.Repeat((long)ClipTokenizer.EndOfTextId, 77).ToArray();
        ids[0] = ClipTokenizer.StartOfTextId;
        for (int i = 0; i < tokens.Count; i++) ids[i + 1] = tokens[i];
        var context = model.ClipL!.forward(tensor(ids, [1, 77])).repeat(4, 1, 1);
        using var schedule = new KohyaNoiseSchedule();
        var prediction = model.UNet.Forward(schedule.AddNoise(x0, noise, t), t, context);
        return (prediction - noise).square().mean().item<float>();
    }

    [Fact]
    public void OverfittingOneImageLowersItsLoss()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data/1_sks"));
        string image = dir.File("data/1_sks/a.png");
        ScheduleAndDataTests.WriteImage(image, 16, 16, new SKColor(220, 30, 30));
        using var model = TinyModel.Load();
        double before = FixedLoss(model, image, "sks");
        var result = LoraTrainer.Train(model, new LoraTrainingOptions
        {
            DataPath = dir.File("data"),
            OutputPath = dir.File("sks.safetensors"),
            Rank = 4,
            LearningRate = 2e-2,
            TrainTextEncoder = false,
            MaxSteps = 30,
            BatchSize = 1,
            Seed = 1,
            Resolution = 16,
            BucketStep = 8,
        });
        using var file = SafetensorsFile.Open(result.OutputPath);
        using var network = LoraTrainingNetwork.Load(model, file, new LoraNetworkOptions());
        Assert.All(network.Modules, m => Assert.False(m.IsTextEncoder));
        network.Attach();
        double after = FixedLoss(model, image, "sks");
        network.Detach();
        output.WriteLine($"fixed-batch loss before {before:F5}, after 30 steps {after:F5}");
        Assert.True(after < 0.9 * before, $"loss {before:F4} -> {after:F4}: training did not fit the image");
    }

    /// <summary>
    /// The "generation of the trained concept measurably moves toward it": a LoCon (the tiny U-Net has one
    /// attention block per level, so its ResBlocks carry the capacity) overfit on one image through the CLI, then the
    /// same seed generated with and without it (CFG 1); the rms distance of the final latents to the image's own latents
    /// falls from 17.0 to 5.7 (asserted: below 0.7x).
    /// </summary>
    [Fact]
    public void GenerationWithTheOverfitLoraMovesTowardTheTrainingImage()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data/1_sks"));
        Directory.CreateDirectory(dir.File("models/Lora"));
        string image = dir.File("data/1_sks/a.png");
        ScheduleAndDataTests.WriteImage(image, 16, 16, new SKColor(220, 30, 30));
        string[] model = ["--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip")];
        var trained = CliHarness.Run([ "train", "lora", .. model, "--data", dir.File("data"), "--out", dir.File("models/Lora/sks.safetensors"),
            "--train", "unet", "--algo", "locon", "--rank", "4", "--conv-rank", "4", "--lr", "2e-2", "--max-steps", "150", "--seed", "1", "--resolution", "16", "--bucket-step", "8"]);
        Assert.True(trained.Code == 0, trained.Stderr);

        float[] Generate(string prompt, string name)
        {
            var run = CliHarness.Run([ "generate", .. model, "--width", "16", "--height", "16", "--steps", "12", "--sampler", "Euler", "--cfg", "1", "--seed", "5",
                "--models-dir", dir.File("models"), "--prompt", prompt, "--out", dir.File(name + ".png"), "--save-latents", dir.File(name + ".safetensors")]);
            Assert.True(run.Code == 0, run.Stderr);
            return CliHarness.SavedLatents(dir.File(name + ".safetensors"));
        }
        float[] target;
        using (var m = TinyModel.Load())
        using (no_grad())
        using (var pixels = TrainingImageLoader.Load(image, 16, 16))
        using (var latents = m.Vae.EncodeToLatents(pixels))
            target = latents.data<float>().ToArray();
        double Distance(float[] x) => Math.Sqrt(x.Zip(target, (a, b) => (double)(a - b) * (a - b)).Average());
        double plain = Distance(Generate("sks", "plain")), withLora = Distance(Generate("sks <lora:sks:1>", "lora"));
        output.WriteLine($"rms distance of the generated latents to the training image's: plain {plain:F4}, with the LoRA {withLora:F4}");
        Assert.True(withLora < 0.7 * plain, $"the LoRA moved generation from {plain:F4} to only {withLora:F4} of the training image");
    }

    [Fact]
    public void Sd2vTrainsTheUNetWithVTargets()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data/2_fox"));
        ScheduleAndDataTests.WriteImage(dir.File("data/2_fox/a.png"), 16, 16, new SKColor(200, 120, 30));
        using var model = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd2v.safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile("tiny_sd2v.config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
        });
        var options = new LoraTrainingOptions
        {
            DataPath = dir.File("data"),
            OutputPath = dir.File("fox.safetensors"),
            TrainTextEncoder = false,
            MaxSteps = 2,
            LearningRate = 1e-2,
            Resolution = 16,
            BucketStep = 8,
            MinSnrGamma = 5,
        };
        var result = LoraTrainer.Train(model, options);
        Assert.True(double.IsFinite(result.FinalLoss) && result.FinalLoss > 0);
        using var file = SafetensorsFile.Open(result.OutputPath);
        Assert.Equal("True", file.Metadata["ss_v2"]);
        Assert.Equal("sd_v2_768_v", file.Metadata["ss_base_model_version"]);
        Assert.All(file.Tensors, t => Assert.StartsWith("lora_unet_", t.Name));
        Assert.Contains(file.Tensors, t => t.Name.EndsWith("attn2_to_k.lora_down.weight"));
        // With the text encoder: OpenCLIP's modules under kohya's transformers names (OpenClipLoraTrainingTests checks their math).
        var withText = LoraTrainer.Train(model, options with { TrainTextEncoder = true, OutputPath = dir.File("te.safetensors") });
        using var textFile = SafetensorsFile.Open(withText.OutputPath);
        Assert.Contains(textFile.Tensors, t => t.Name == "lora_te_text_model_encoder_layers_0_self_attn_v_proj.lora_down.weight");
    }
}
