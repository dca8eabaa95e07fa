using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using SkiaSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// U-Net LoRA training on SDXL (kohya's sdxl_train_network): the trainer's text conditioning equals the inference
/// conditioner's (golden-verified against sgm) for plain captions, the size conditioning is kohya's, and the file is a
/// kohya SDXL LoRA (LDM module names, sdxl_base_v1-0) that inspect classifies and generate applies.
/// </summary>
public class SdxlLoraTrainingTests
{
    private static StableDiffusionCheckpoint LoadTinySdxl() => StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sdxl.safetensors"), new CheckpointLoadOptions
    {
        ConfigPath = TestPaths.GoldenFile("tiny_sdxl.config.json"),
        TokenizerPath = TestPaths.GoldenFile("clip"),
    });

    [Fact]
    public void TrainingConditioningEqualsTheInferenceConditioners()
    {
        using var model = LoadTinySdxl();
        using var scope = NewDisposeScope();
        string[] captions = ["a photograph of an astronaut riding a horse", ""];
        var image = new TrainingImage("x.png", "", 1, 600, 400, (576, 448));
        using var cache = new FrozenTextCache(model, clipSkip: 1);
        var (context, pooled) = LoraTrainer.Encode(model, captions, new LoraTrainingOptions { DataPath = "", OutputPath = "", TrainTextEncoder = false }, cache);
        Assert.NotNull(pooled);
        var sizes = LoraTrainer.KohyaSizes(image);
        // The inference conditioner zeroes an all-empty *negative* prompt only; as a positive prompt "" is encoded.
        var expected = ((SdxlTextConditioner)model.CreateTextConditioner()).Encode(captions, [sizes, sizes], isNegative: false);
        TensorAssert.CloseRelativeToRms(expected.CrossAttention, context, 1e-6, "context");
        var vector = cat([pooled!, SizeEmbedding.ForSizes([sizes, sizes], model.SdxlSizeEmbeddingDim)], 1);
        TensorAssert.CloseRelativeToRms(expected.Vector!, vector, 1e-6, "vector");
    }

    [Theory]
    [InlineData(600, 400, 576, 448, false, 32, 0)]  // wider than its bucket: fitted to the bucket's width, letterboxed top and bottom
    [InlineData(400, 600, 448, 576, false, 0, 32)]  // taller: fitted to the height, offset left
    [InlineData(400, 600, 448, 576, true, 0, 32)]   // flipped: bucket width − right edge (448 − (32 + 384))
    [InlineData(500, 300, 512, 320, true, 6, 0)]    // 512 / (5/3) = 307.2: top floor(6.4) = 6; flipped left 512 − 512 = 0
    [InlineData(512, 512, 512, 512, false, 0, 0)]
    public void SizeConditioningIsKohyas(int width, int height, int bucketWidth, int bucketHeight, bool flipped, int top, int left)
    {
        var sizes = LoraTrainer.KohyaSizes(new TrainingImage("x.png", "", 1, width, height, (bucketWidth, bucketHeight)), flipped);
        Assert.Equal(new ImageSizeConditioning(height, width, top, left, bucketHeight, bucketWidth), sizes);
    }

    [Fact]
    public void TrainedSdxlLoraIsAKohyaSdxlLoraThatInspectClassifiesAndGenerateApplies()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data/1_sks toy"));
        ScheduleAndDataTests.WriteImage(dir.File("data/1_sks toy/a.png"), 16, 16, new SKColor(200, 40, 10));
        ScheduleAndDataTests.WriteImage(dir.File("data/1_sks toy/b.png"), 20, 16, new SKColor(30, 160, 20));
        Directory.CreateDirectory(dir.File("models/Lora"));
        string lora = dir.File("models/Lora/toyxl.safetensors");
        string[] model = ["--model", TestPaths.GoldenFile("tiny_sdxl.safetensors"), "--config", TestPaths.GoldenFile("tiny_sdxl.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip")];
        var (code, stdout, stderr) = Run([ "train", "lora", .. model, "--data", dir.File("data"), "--out", lora, "--train", "unet", "--rank", "4",
            "--alpha", "2", "--lr", "5e-2", "--max-steps", "3", "--seed", "3", "--resolution", "16", "--bucket-step", "4", "--json"]);
        Assert.True(code == 0, stderr);
        Assert.Equal(3, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        using (var file = SafetensorsFile.Open(lora))
        {
            Assert.Equal("sdxl_base_v1-0", file.Metadata["ss_base_model_version"]);
            Assert.Equal("stable-diffusion-xl-v1-base/lora", file.Metadata["modelspec.architecture"]);
            Assert.Equal("False", file.Metadata["ss_v2"]);
            Assert.Equal("True", file.Metadata["ss_network_train_unet_only"]);
            // kohya's sdxl_original_unet names: the LDM path, not diffusers'.
            Assert.Contains(file.Tensors, t => t.Name == "lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k.lora_down.weight");
            Assert.Contains(file.Tensors, t => t.Name == "lora_unet_middle_block_1_proj_in.alpha");
            Assert.DoesNotContain(file.Tensors, t => t.Name.StartsWith("lora_unet_down_blocks", StringComparison.Ordinal) || t.Name.StartsWith("lora_te", StringComparison.Ordinal));
        }

        var (inspectCode, inspectOut, inspectErr) = Run("inspect", lora, "--json");
        Assert.True(inspectCode == 0, inspectErr);
        Assert.Contains("\"kind\":\"lora\"", inspectOut);
        Assert.Contains("\"base\":\"sdxl\"", inspectOut);

        string[] Generate(string prompt, string latents) => ["generate", .. model, "--width", "16", "--height", "16", "--steps", "2", "--sampler", "Euler",
            "--seed", "5", "--models-dir", dir.File("models"), "--prompt", prompt, "--out", dir.File(Path.GetFileNameWithoutExtension(latents) + ".png"),
            "--save-latents", latents];
        var plain = Run(Generate("sks toy", dir.File("plain.safetensors")));
        Assert.True(plain.Code == 0, plain.Stderr);
        var withLora = Run(Generate("sks toy <lora:toyxl:1>", dir.File("lora.safetensors")));
        Assert.True(withLora.Code == 0, withLora.Stderr);
        Assert.Contains("Lora hashes: \"toyxl: ", File.ReadAllText(dir.File("lora.png")));
        float[] Latents(string path) => SavedLatents(path);
        double maxDiff = Latents(dir.File("plain.safetensors")).Zip(Latents(dir.File("lora.safetensors")), (p, q) => Math.Abs(p - q)).Max();
        Assert.True(maxDiff > 1e-4, $"the LoRA changed the latents by only {maxDiff:E2}");
    }
}
