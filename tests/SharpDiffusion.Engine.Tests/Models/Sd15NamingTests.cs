using SharpDiffusion.Engine.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Models;

/// <summary>
/// Full-size SD1.5 modules, built on the meta device (shapes only), have exactly the state_dict names and
/// shapes of a real v1-5 checkpoint, so a strict load of a real file works.
/// </summary>
public class Sd15NamingTests
{
    private static ReferenceInventory Inventory() => ReferenceInventory.Load(TestPaths.ReferenceFile("sd15_single_file.tsv"));

    private static Dictionary<string, string> ModuleShapes(nn.Module module) => module.state_dict()
        .ToDictionary(kv => kv.Key, kv => "[" + string.Join(", ", kv.Value.shape) + "]");

    private static void AssertSameInventory(Dictionary<string, string> expected, Dictionary<string, string> actual)
    {
        var missing = expected.Keys.Except(actual.Keys).OrderBy(k => k, StringComparer.Ordinal).ToList();
        var extra = actual.Keys.Except(expected.Keys).OrderBy(k => k, StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, "module lacks: " + string.Join(", ", missing.Take(10)));
        Assert.True(extra.Count == 0, "module has extra: " + string.Join(", ", extra.Take(10)));
        var misShaped = expected.Where(kv => actual[kv.Key] != kv.Value).Select(kv => $"{kv.Key} {kv.Value} vs {actual[kv.Key]}").ToList();
        Assert.True(misShaped.Count == 0, "shapes differ: " + string.Join(", ", misShaped.Take(10)));
    }

    [Fact]
    public void UNetNamesAndShapesEqualTheCheckpoint()
    {
        var expected = Inventory().ShapesUnder("model.diffusion_model.");
        Assert.Equal(686, expected.Count);
        using var unet = new UNetModel(Sd15Configs.UNet, new LayerFactory(META, ScalarType.Float32));
        AssertSameInventory(expected, ModuleShapes(unet));
    }

    [Fact]
    public void VaeNamesAndShapesEqualTheCheckpoint()
    {
        var expected = Inventory().ShapesUnder("first_stage_model.");
        Assert.Equal(248, expected.Count);
        using var vae = new AutoencoderKL(Sd15Configs.Vae, new LayerFactory(META, ScalarType.Float32));
        AssertSameInventory(expected, ModuleShapes(vae));
    }

    [Fact]
    public void DetectionFromTheCheckpointInventoryGivesSd15()
    {
        using var file = Inventory();
        var unet = UNetConfig.DetectFromWeights(file, "model.diffusion_model.");
        Assert.True(unet.SameArchitecture(Sd15Configs.UNet), unet.ToString());
        Assert.Equal((8, 40), unet.HeadsFor(320));
        Assert.Equal((8, 160), unet.HeadsFor(1280));
        var vae = VaeConfig.DetectFromWeights(file, "first_stage_model.");
        Assert.True(vae.SameArchitecture(Sd15Configs.Vae), vae.ToString());
        Assert.Equal(8, vae.DownsampleFactor);
    }

    [Fact]
    public void V1InferenceYamlGivesSd15()
    {
        var tree = new ConfigTree(YamlSubsetReader.Parse(Sd15Configs.V1InferenceYaml, "v1-inference.yaml"), "v1-inference.yaml");
        var unet = UNetConfig.FromLdmConfig(tree);
        Assert.True(unet.SameArchitecture(Sd15Configs.UNet), unet.ToString());
        Assert.Equal(8, unet.NumHeads);
        Assert.Equal(-1, unet.NumHeadChannels);
        Assert.False(unet.Legacy);
        var vae = VaeConfig.FromLdmConfig(tree);
        Assert.True(vae.SameArchitecture(Sd15Configs.Vae), vae.ToString());
        Assert.Equal(0.18215, vae.ScaleFactor);
    }
}
