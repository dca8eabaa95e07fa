using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Hypernetworks;
using SharpDiffusion.Engine.Tests.ExtraNetworks;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Engine.Weights;
using SkiaSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// A1111 hypernetwork training on the tiny SD1 model, with module widths taken from the A1111-written golden
/// tiny_relu.pt: the .pt our pickle writer produces is read back by the torch reader with A1111's fields, inspect
/// classifies it, <c>&lt;hypernet:NAME:1&gt;</c> changes generation, and a resumed run ends bit-identical.
/// </summary>
[Collection(GlobalTorchRngCollection.Name)]
public class HypernetworkTrainerTests
{
    private static IReadOnlyList<int> GoldenWidths()
    {
        using var file = ModelFileReader.Open(TestPaths.GoldenFile("a1111/hypernetworks/tiny_relu.pt"));
        using var golden = Hypernetwork.Load(file);
        return [.. golden.Widths];
    }

    private static HypernetworkTrainingOptions Options(string data, string output) => new()
    {
        DataPath = data,
        OutputPath = output,
        Name = "toyhn", // the templates' [name]: the same word in every run
        LayerStructure = [1, 2, 1],
        ActivationFunc = "relu",
        LayerNorm = true,
        DropoutStructure = [0, 0.3, 0],
        Sizes = GoldenWidths(),
        LearningRate = "1e-2",
        MaxSteps = 4,
        GradientAccumulation = 2,
        Seed = 5,
        Resolution = 16,
        BucketStep = 8,
    };

    private static Dictionary<string, float[]> PtTensors(string path)
    {
        using var file = ModelFileReader.Open(path);
        return file.Tensors.ToDictionary(t => t.Name, t =>
        {
            using var v = TensorReading.Read(file, t, ScalarType.Float32);
            return v.data<float>().ToArray();
        });
    }

    [Fact]
    public void ResumingEndsBitIdenticalAndTheFileLoadsWithItsStructure()
    {
        using var dir = new TempDir();
        string data = ScheduleAndDataTests.WriteTemplateData(dir);
        using var model = TinyModel.Load();
        var straight = HypernetworkTrainer.Train(model, Options(data, dir.File("straight.pt")));
        Assert.Equal(4, straight.Steps);
        var first = HypernetworkTrainer.Train(model, Options(data, dir.File("resumed.pt")), stopAfterStep: 2);
        Assert.False(File.Exists(dir.File("resumed.pt")));
        var second = HypernetworkTrainer.Train(model, Options(data, dir.File("resumed.pt")) with { ResumePath = first.StatePath });
        Assert.Equal((4L, 2L), (second.Steps, second.ResumedFrom));
        Assert.Null(model.UNet.ContextHook);

        var a = PtTensors(dir.File("straight.pt"));
        var b = PtTensors(dir.File("resumed.pt"));
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, values) in a) Assert.True(values.SequenceEqual(b[name]), $"{name} differs after resume");

        using var file = ModelFileReader.Open(dir.File("straight.pt"));
        using var loaded = Hypernetwork.Load(file);
        Assert.Equal(GoldenWidths(), loaded.Widths.ToList());
        Assert.Equal([1.0, 2.0, 1.0], loaded.Structure.LayerStructure);
        Assert.Equal("relu", loaded.Structure.ActivationFunc);
        Assert.True(loaded.Structure.IsLayerNorm);
        Assert.False(loaded.Structure.ActivateOutput);
        Assert.Equal([0.0, 0.3, 0.0], loaded.Structure.DropoutStructure.Take(3));
        Assert.Equal(4L, loaded.Step);
        Assert.Equal("toyhn", loaded.Name);
        // Linear and LayerNorm weights of every width, k and v: 2 x (2 Linear + 2 LayerNorm) x (weight, bias).
        Assert.Equal(GoldenWidths().Count * 2 * 8, a.Count);
    }

    [Fact]
    public void TrainedHypernetworkIsClassifiedByInspectAndAppliedByGenerate()
    {
        using var dir = new TempDir();
        string data = ScheduleAndDataTests.WriteTemplateData(dir);
        Directory.CreateDirectory(dir.File("models/hypernetworks"));
        string output = dir.File("models/hypernetworks/toyhn.pt");
        var (code, stdout, stderr) = Run("train", "hypernetwork", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"),
            "--data", data, "--out", output, "--layer-structure", "1,2,1", "--activation", "swish", "--layer-norm",
            "--sizes", string.Join(',', GoldenWidths()), "--lr", "0.01", "--max-steps", "3", "--seed", "3", "--resolution", "16", "--bucket-step", "8", "--json");
        Assert.True(code == 0, stderr);
        Assert.Equal(3, stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        var (inspectCode, inspectOut, inspectErr) = Run("inspect", output, "--json");
        Assert.True(inspectCode == 0, inspectErr);
        Assert.Contains("\"kind\":\"hypernetwork\"", inspectOut);
        Assert.Contains("\"activation\":\"swish\"", inspectOut);
        Assert.Contains("\"layer_norm\":true", inspectOut);
        Assert.Contains("\"step\":3", inspectOut);

        string[] Generate(string prompt, string latents) => ["generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"), "--width", "16", "--height", "16",
            "--steps", "2", "--sampler", "Euler", "--seed", "5", "--models-dir", dir.File("models"), "--prompt", prompt,
            "--out", dir.File(Path.GetFileNameWithoutExtension(latents) + ".png"), "--save-latents", latents];
        var plain = Run(Generate("a toy", dir.File("plain.safetensors")));
        Assert.True(plain.Code == 0, plain.Stderr);
        var with = Run(Generate("a toy <hypernet:toyhn:1>", dir.File("with.safetensors")));
        Assert.True(with.Code == 0, with.Stderr);
        float[] Latents(string path) => SavedLatents(path);
        double maxDiff = Latents(dir.File("plain.safetensors")).Zip(Latents(dir.File("with.safetensors")), (p, q) => Math.Abs(p - q)).Max();
        Assert.True(maxDiff > 1e-4, $"the hypernetwork changed the latents by only {maxDiff:E2}");
    }

    [Fact]
    public void BadStructureIsOneLineExit2()
    {
        using var dir = new TempDir();
        string data = ScheduleAndDataTests.WriteTemplateData(dir);
        var (code, _, stderr) = Run("train", "hypernetwork", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"),
            "--data", data, "--out", dir.File("h.pt"), "--layer-structure", "2,1", "--resolution", "16", "--bucket-step", "8");
        Assert.Equal(2, code);
        Assert.Contains("must start and end with 1", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        (code, _, stderr) = Run("train", "hypernetwork", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--data", data, "--out", dir.File("h.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains(".pt", stderr);
    }
}
