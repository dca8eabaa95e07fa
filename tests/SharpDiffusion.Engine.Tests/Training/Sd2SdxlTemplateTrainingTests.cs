using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Engine.Embeddings;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// Embedding and hypernetwork training beyond SD1: OpenCLIP's vectors on SD2-v (v target), kohya's two vector sets
/// (clip_l, clip_g) on SDXL. The conditioning the trainer optimises is the one the golden-verified inference
/// conditioner computes once the trained file is loaded, and the files are classified and applied by the CLI.
/// </summary>
public class Sd2SdxlTemplateTrainingTests
{
    private static string[] ModelArgs(string name) => ["--model", TestPaths.GoldenFile(name + ".safetensors"),
        "--config", TestPaths.GoldenFile(name + ".config.json"), "--tokenizer", TestPaths.GoldenFile("clip")];

    private static StableDiffusionCheckpoint Load(string name) => StableDiffusionCheckpoint.Load(TestPaths.GoldenFile(name + ".safetensors"),
        new CheckpointLoadOptions { ConfigPath = TestPaths.GoldenFile(name + ".config.json"), TokenizerPath = TestPaths.GoldenFile("clip") });

    private static Tensor ReadTensor(SafetensorsFile file, string name) =>
        TensorReading.Read(file, file.Tensors.Single(t => t.Name == name), ScalarType.Float32);

    [Theory]
    [InlineData("tiny_sd2v")]
    [InlineData("tiny_sdxl")]
    public void TrainedEmbeddingConditionsAsTheInferenceConditionerWithItLoaded(string modelName)
    {
        using var dir = new TempDir();
        string data = ScheduleAndDataTests.WriteTemplateData(dir);
        using var model = Load(modelName);
        Directory.CreateDirectory(dir.File("embeddings"));
        string path = dir.File("embeddings/toyemb.safetensors");
        var result = EmbeddingTrainer.Train(model, new EmbeddingTrainingOptions
        {
            DataPath = data, OutputPath = path, Name = "toyemb", Vectors = 2, InitText = "a photo", LearningRate = "0.05",
            MaxSteps = 2, Seed = 3, Resolution = 16, BucketStep = 8,
        });
        Assert.Equal(2, result.Steps);
        Assert.True(double.IsFinite(result.FinalLoss));

        bool sdxl = model.ClipL != null;
        using var file = SafetensorsFile.Open(path);
        string[] expectedKeys = sdxl ? ["clip_g", "clip_l"] : ["emb_params"];
        Assert.Equal(expectedKeys, file.Tensors.Select(t => t.Name).Order());
        using var scope = NewDisposeScope();
        var clipL = sdxl ? ReadTensor(file, "clip_l") : null;
        var openClip = ReadTensor(file, sdxl ? "clip_g" : "emb_params");
        Assert.Equal([2L, model.OpenClip!.Width], openClip.shape);
        if (clipL is not null) Assert.Equal([2L, model.ClipL!.Width], clipL.shape);
        // Training moved the vectors away from the init text's embeddings.
        var init = EmbeddingTrainer.InitialVectors(model.OpenClip.EmbedTokens, model.Tokenizer.Encode("a photo"), 2);
        Assert.True((openClip - init).abs().max().item<float>() > 1e-3, "the OpenCLIP vectors did not move");

        using var db = EmbeddingDatabase.FromFolder(dir.File("embeddings"), [.. new[] { model.ClipL?.Width, model.OpenClip.Width }.OfType<int>()],
            SafetensorsFile.Open);
        Assert.Single(db.Embeddings);
        var conditioner = model.CreateTextConditioner(1, width => db.ForEncoder(model.Tokenizer, width));
        string prompt = "a photo of toyemb, red";
        var sizes = new ImageSizeConditioning(16, 16, 0, 0, 16, 16);
        var expected = conditioner.Encode([prompt], sizes: sizes);

        var (ids, offsets) = EmbeddingTrainer.PromptIds(model, [prompt], model.Tokenizer.Encode("toyemb"), 2);
        Assert.Equal([3], offsets[0]); // "a photo of" then the two vectors
        var (context, pooled) = TrainingConditioning.Encode(model, ids, 1, new EmbeddingSplice(offsets, clipL, openClip));
        TensorAssert.CloseRelativeToRms(expected.CrossAttention, context, 1e-6, "context");
        if (sdxl)
        {
            var vector = cat([pooled!, SizeEmbedding.ForSizes([sizes], model.SdxlSizeEmbeddingDim)], 1);
            TensorAssert.CloseRelativeToRms(expected.Vector!, vector, 1e-6, "vector");
        }
        else Assert.Null(pooled);
    }

    [Fact]
    public void SdxlEmbeddingFromTheCliIsClassifiedAndChangesGeneration()
    {
        using var dir = new TempDir();
        string data = ScheduleAndDataTests.WriteTemplateData(dir);
        Directory.CreateDirectory(dir.File("models/embeddings"));
        Directory.CreateDirectory(dir.File("empty"));
        string embedding = dir.File("models/embeddings/toyxl.safetensors");
        var (code, stdout, stderr) = Run(["train", "embedding", .. ModelArgs("tiny_sdxl"), "--data", data, "--out", embedding, "--name", "toyxl",
            "--vectors", "2", "--init-text", "a photo", "--lr", "0.05", "--max-steps", "2", "--seed", "3", "--resolution", "16", "--bucket-step", "8",
            "--template", "subject_filewords", "--json"]);
        Assert.True(code == 0, stderr);
        Assert.Equal(2, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        var (inspectCode, inspectOut, inspectErr) = Run("inspect", embedding, "--json");
        Assert.True(inspectCode == 0, inspectErr);
        Assert.Contains("\"kind\":\"embedding\"", inspectOut);
        Assert.Contains("\"layout\":\"sdxl\"", inspectOut); // clip_l + clip_g (the tiny widths name no family)
        Assert.Contains("\"vectors\":2", inspectOut);

        string[] Generate(string modelsDir, string name) => ["generate", .. ModelArgs("tiny_sdxl"), "--width", "16", "--height", "16", "--steps", "2",
            "--sampler", "Euler", "--seed", "5", "--models-dir", modelsDir, "--prompt", "a photo of toyxl", "--out", dir.File(name + ".png"),
            "--save-latents", dir.File(name + ".safetensors")];
        var plain = Run(Generate(dir.File("empty"), "plain"));
        Assert.True(plain.Code == 0, plain.Stderr);
        var with = Run(Generate(dir.File("models"), "with"));
        Assert.True(with.Code == 0, with.Stderr);
        Assert.Contains("TI hashes: \"toyxl: ", File.ReadAllText(dir.File("with.png"), System.Text.Encoding.Latin1));
        float[] Latents(string name) => SavedLatents(dir.File(name + ".safetensors"));
        double maxDiff = Latents("plain").Zip(Latents("with"), (p, q) => Math.Abs(p - q)).Max();
        Assert.True(maxDiff > 1e-4, $"the embedding changed the latents by only {maxDiff:E2}");

        // A1111's .pt holds one vector set: an SDXL embedding is refused there, in one line.
        var refused = Run(["train", "embedding", .. ModelArgs("tiny_sdxl"), "--data", data, "--out", dir.File("toyxl.pt"), "--name", "toyxl",
            "--max-steps", "1", "--resolution", "16", "--bucket-step", "8"]);
        Assert.Equal(2, refused.Code);
        Assert.Contains("write it as .safetensors", refused.Stderr);
        Assert.Single(refused.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public void Sd2HypernetworkTrainsOnTheModelsTextWidthByDefaultAndIsApplied()
    {
        using var dir = new TempDir();
        string data = ScheduleAndDataTests.WriteTemplateData(dir);
        Directory.CreateDirectory(dir.File("models/hypernetworks"));
        string output = dir.File("models/hypernetworks/toyhn2.pt");
        var (code, _, stderr) = Run(["train", "hypernetwork", .. ModelArgs("tiny_sd2v"), "--data", data, "--out", output, "--lr", "0.01",
            "--max-steps", "3", "--seed", "3", "--resolution", "16", "--bucket-step", "8"]);
        Assert.True(code == 0, stderr);
        var (inspectCode, inspectOut, inspectErr) = Run("inspect", output, "--json");
        Assert.True(inspectCode == 0, inspectErr);
        Assert.Contains("\"kind\":\"hypernetwork\"", inspectOut);
        // No --sizes: the model's context width (16 on the tiny SD2-v) first, then A1111's 320, 640, 1280.
        using (var file = SharpDiffusion.Formats.ModelFileReader.Open(output))
        using (var loaded = SharpDiffusion.Engine.Hypernetworks.Hypernetwork.Load(file))
            Assert.Equal([16, 320, 640, 1280], loaded.Widths.ToList());

        string[] Generate(string prompt, string name) => ["generate", .. ModelArgs("tiny_sd2v"), "--width", "16", "--height", "16", "--steps", "2",
            "--sampler", "Euler", "--seed", "5", "--models-dir", dir.File("models"), "--prompt", prompt, "--out", dir.File(name + ".png"),
            "--save-latents", dir.File(name + ".safetensors")];
        var plain = Run(Generate("a toy", "plain"));
        Assert.True(plain.Code == 0, plain.Stderr);
        var with = Run(Generate("a toy <hypernet:toyhn2:1>", "with"));
        Assert.True(with.Code == 0, with.Stderr);
        float[] Latents(string name) => SavedLatents(dir.File(name + ".safetensors"));
        double maxDiff = Latents("plain").Zip(Latents("with"), (p, q) => Math.Abs(p - q)).Max();
        Assert.True(maxDiff > 1e-4, $"the hypernetwork changed the latents by only {maxDiff:E2}");
    }
}
