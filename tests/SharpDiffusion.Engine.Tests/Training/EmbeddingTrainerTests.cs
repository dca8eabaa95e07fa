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
/// A1111 textual-inversion training on the tiny SD1 model: the vectors start from the init text's token embeddings,
/// a resumed run ends bit-identical to a straight one, and the CLI's embedding is classified by inspect and changes
/// what generate produces for a prompt naming it.
/// </summary>
public class EmbeddingTrainerTests
{
    private static EmbeddingTrainingOptions Options(string data, string output) => new()
    {
        DataPath = data,
        OutputPath = output,
        Name = "toyemb",
        Vectors = 3,
        InitText = "a photo",
        LearningRate = "0.05:2, 0.01",
        MaxSteps = 4,
        GradientAccumulation = 2,
        Seed = 7,
        Resolution = 16,
        BucketStep = 8,
        ShuffleTags = true,
    };

    private static float[] Read(string path, string name)
    {
        using var file = SafetensorsFile.Open(path);
        using var v = TensorReading.Read(file, file.Tensors.Single(t => t.Name == name), ScalarType.Float32);
        return v.data<float>().ToArray();
    }

    [Fact]
    public void InitialVectorsSpreadTheInitTokensAsA1111()
    {
        using var model = TinyModel.Load();
        var tokens = model.Tokenizer.Encode("a photo");
        Assert.Equal(2, tokens.Count);
        using var vectors = EmbeddingTrainer.InitialVectors(model.ClipL!, tokens, 3);
        using var table = model.ClipL!.EmbedTokens(tensor(tokens.Select(t => (long)t).ToArray(), [1, 2]))[0];
        // vec[i] = embedded[i * 2 // 3]: rows a, a, photo.
        Assert.True(vectors[0].allclose(table[0], 0, 0) && vectors[1].allclose(table[0], 0, 0) && vectors[2].allclose(table[1], 0, 0));
        using var empty = EmbeddingTrainer.InitialVectors(model.ClipL!, [], 2);
        Assert.Equal(0.0, empty.abs().sum().item<float>());
    }

    [Fact]
    public void FilledTemplatesReplaceNameAndFilewords()
    {
        var random = new StepRandom(1, "t", 0);
        string text = PromptTemplates.Fill(PromptTemplates.BuiltIn["subject_filewords"], "toyemb", "red, small", random);
        Assert.Contains("toyemb", text);
        Assert.EndsWith(", red, small", text);
        Assert.Equal(17, PromptTemplates.BuiltIn["style_filewords"].Count);
        Assert.Equal(27, PromptTemplates.BuiltIn["subject_filewords"].Count);
    }

    [Fact]
    public void ResumingEndsBitIdenticalToAStraightRun()
    {
        using var dir = new TempDir();
        string data = ScheduleAndDataTests.WriteTemplateData(dir);
        using var model = TinyModel.Load();
        var straight = EmbeddingTrainer.Train(model, Options(data, dir.File("straight.safetensors")));
        Assert.Equal(4, straight.Steps);
        var first = EmbeddingTrainer.Train(model, Options(data, dir.File("resumed.safetensors")), stopAfterStep: 2);
        Assert.False(File.Exists(dir.File("resumed.safetensors")));
        var second = EmbeddingTrainer.Train(model, Options(data, dir.File("resumed.safetensors")) with { ResumePath = first.StatePath });
        Assert.Equal((4L, 2L), (second.Steps, second.ResumedFrom));
        var a = Read(dir.File("straight.safetensors"), "emb_params");
        var b = Read(dir.File("resumed.safetensors"), "emb_params");
        Assert.Equal(3 * model.ClipL!.Width, a.Length);
        Assert.True(a.SequenceEqual(b), "the resumed embedding differs");
        using var init = EmbeddingTrainer.InitialVectors(model.ClipL!, model.Tokenizer.Encode("a photo"), 3);
        double moved = a.Zip(init.data<float>().ToArray(), (x, y) => Math.Abs(x - y)).Max();
        Assert.True(moved > 1e-3, $"training moved the vectors by only {moved:E2}");
    }

    [Fact]
    public void TrainedEmbeddingIsClassifiedByInspectAndUsedByGenerate()
    {
        using var dir = new TempDir();
        string data = ScheduleAndDataTests.WriteTemplateData(dir);
        Directory.CreateDirectory(dir.File("models/embeddings"));
        Directory.CreateDirectory(dir.File("empty"));
        string embedding = dir.File("models/embeddings/toyemb.safetensors");
        var (code, stdout, stderr) = Run("train", "embedding", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"),
            "--data", data, "--out", embedding, "--name", "toyemb", "--vectors", "2", "--init-text", "a photo", "--lr", "0.05",
            "--max-steps", "3", "--seed", "3", "--resolution", "16", "--bucket-step", "8", "--template", "subject_filewords", "--json");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains("\"lr\":0.05", lines[0]);
        using (var file = SafetensorsFile.Open(embedding))
        {
            Assert.Equal("3", file.Metadata["step"]);
            Assert.Equal("toyemb", file.Metadata["name"]);
            Assert.Equal("tiny_sd1", file.Metadata["sd_checkpoint_name"]);
            Assert.Equal(10, file.Metadata["sd_checkpoint"].Length);
        }

        var (inspectCode, inspectOut, inspectErr) = Run("inspect", embedding, "--json");
        Assert.True(inspectCode == 0, inspectErr);
        Assert.Contains("\"kind\":\"embedding\"", inspectOut);
        Assert.Contains("\"vectors\":2", inspectOut);

        string[] Generate(string modelsDir, string latents) => ["generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"), "--width", "16", "--height", "16",
            "--steps", "2", "--sampler", "Euler", "--seed", "5", "--models-dir", modelsDir, "--prompt", "a photo of toyemb",
            "--out", dir.File(Path.GetFileNameWithoutExtension(latents) + ".png"), "--save-latents", latents];
        var plain = Run(Generate(dir.File("empty"), dir.File("plain.safetensors")));
        Assert.True(plain.Code == 0, plain.Stderr);
        var with = Run(Generate(dir.File("models"), dir.File("with.safetensors")));
        Assert.True(with.Code == 0, with.Stderr);
        var x = Read(dir.File("plain.safetensors"), "latents");
        var y = Read(dir.File("with.safetensors"), "latents");
        double maxDiff = x.Zip(y, (p, q) => Math.Abs(p - q)).Max();
        Assert.True(maxDiff > 1e-4, $"the embedding changed the latents by only {maxDiff:E2}");
    }

    [Fact]
    public void PtOutputIsA1111sLayoutThatLoadsAsAnEmbedding()
    {
        using var dir = new TempDir();
        string data = ScheduleAndDataTests.WriteTemplateData(dir);
        using var model = TinyModel.Load();
        string pt = dir.File("toyemb.pt");
        EmbeddingTrainer.Train(model, Options(data, pt) with { MaxSteps = 2 });
        using var file = SharpDiffusion.Formats.ModelFileReader.Open(pt);
        Assert.Equal(["string_to_param.*"], file.Tensors.Select(t => t.Name));
        Assert.Equal([3L, model.ClipL!.Width], file.Tensors[0].Shape);
        Assert.Equal("toyemb", file.Metadata["name"]);
        Assert.Equal("2", file.Metadata["step"]);
        Assert.Equal("tiny_sd1", file.Metadata["sd_checkpoint_name"]);
        using var embedding = SharpDiffusion.Engine.Embeddings.TextualInversionEmbedding.Load(file);
        Assert.Equal(3, embedding.VectorCount);
        var (inspectCode, inspectOut, inspectErr) = Run("inspect", pt, "--json");
        Assert.True(inspectCode == 0, inspectErr);
        Assert.Contains("\"kind\":\"embedding\"", inspectOut);
        Assert.Contains("\"token\":\"toyemb\"", inspectOut);
    }

    [Fact]
    public void BadOutputAndMissingTemplateAreOneLineExit2()
    {
        using var dir = new TempDir();
        string data = ScheduleAndDataTests.WriteTemplateData(dir);
        var (code, _, stderr) = Run("train", "embedding", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--data", data,
            "--out", dir.File("e.bin"), "--name", "x");
        Assert.Equal(2, code);
        Assert.Contains(".safetensors", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        (code, _, stderr) = Run("train", "embedding", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"), "--data", data,
            "--out", dir.File("e.safetensors"), "--name", "x", "--template", dir.File("none.txt"), "--resolution", "16", "--bucket-step", "8");
        Assert.Equal(2, code);
        Assert.Contains("no such template file", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
