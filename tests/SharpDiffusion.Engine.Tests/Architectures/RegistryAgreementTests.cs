using System.Text.Json;
using SharpDiffusion.Architectures;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;

namespace SharpDiffusion.Engine.Tests.Architectures;

/// <summary>
/// One description per family: for every golden checkpoint, <c>inspect</c> (its JSON), the architecture generation
/// loads with, and <c>list</c>'s compatibility verdicts all come from the registry entry the classifier names.
/// </summary>
public sealed class RegistryAgreementTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("tiny_sd1.safetensors", "SD1")]
    [InlineData("tiny_sd2v.safetensors", "SD2")]
    [InlineData("tiny_sdxl.safetensors", "SDXL")]
    [InlineData("ext/tiny_sd1_inpaint.safetensors", "SD1 (inpaint)")]
    public void Inspect_generate_and_list_name_the_same_architecture(string file, string expected)
    {
        string path = TestPaths.GoldenFile(file);
        ModelArchitecture architecture;
        using (var model = ModelFileReader.Open(path))
        {
            architecture = ModelArchitectures.Of(ModelClassifier.Classify(model))!;
            Assert.Equal(expected, architecture.DisplayName);

            // generate: the loader's architecture, or a one-line refusal that names it.
            if (architecture.CanGenerate)
            {
                Assert.Same(architecture, CheckpointArchitectureDetection.Detect(model));
            }
            else
            {
                var e = Assert.Throws<InvalidModelFileException>(() => CheckpointArchitectureDetection.Detect(model));
                Assert.Contains($"a {architecture.DisplayName} checkpoint", e.Message);
            }
        }

        // inspect: the JSON's base and input channels are the architecture's.
        var inspect = CliHarness.Run("inspect", path, "--json");
        Assert.Equal(0, inspect.Code);
        var report = JsonDocument.Parse(inspect.Stdout.Trim()).RootElement;
        Assert.Equal(architecture.WireName, report.GetProperty("base").GetString());
        Assert.Equal(architecture.InputChannels, report.GetProperty("input_channels").GetInt32());

        // list: an SD1 LoRA (family from its kohya metadata) fits exactly the SD1 checkpoints.
        string models = _dir.File("models-" + Path.GetFileNameWithoutExtension(file));
        Directory.CreateDirectory(Path.Combine(models, "Lora"));
        File.Copy(TestPaths.GoldenFile("ext/tiny_sd1_lora.safetensors"), Path.Combine(models, "Lora", "tiny_lora.safetensors"));
        var list = CliHarness.Run("list", "--models-dir", models, "--model", path, "--json");
        Assert.Equal(0, list.Code);
        var row = JsonDocument.Parse(list.Stdout.Trim()).RootElement;
        Assert.Equal("sd1", row.GetProperty("base").GetString());
        Assert.Equal(architecture.Family == BaseFamily.SD1 ? "yes" : "incompatible", row.GetProperty("compatible").GetString());
    }
}
