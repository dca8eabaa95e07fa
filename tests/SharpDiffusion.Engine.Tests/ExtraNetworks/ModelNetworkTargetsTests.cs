using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

public sealed class ModelNetworkTargetsTests
{
    [Theory]
    [InlineData("tiny_sd1", 2)]
    [InlineData("tiny_sd2v", 2)]
    [InlineData("tiny_sdxl", 3)]
    public void EveryLiveWeightHasItsCheckpointKeyAndShape(string name, int parts)
    {
        using var model = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile(name + ".safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile(name + ".config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
        });
        using var file = ModelFileReader.Open(model.Path);
        var shapes = file.Tensors.ToDictionary(t => t.Name, t => t.Shape);
        var targets = ModelNetworkTargets.For(model);

        foreach (var (key, weight) in targets.Weights)
        {
            Assert.True(shapes.TryGetValue(key, out var shape), $"{key} is not a checkpoint key");
            Assert.Equal(shape, weight.shape);
        }
        Assert.Contains(targets.Weights.Keys, k => k.StartsWith("model.diffusion_model.", StringComparison.Ordinal));
        Assert.Equal(parts, targets.Weights.Keys.Select(k => string.Join('.', k.Split('.').Take(k.StartsWith("conditioner", StringComparison.Ordinal) ? 3 : 1))).Distinct().Count());
        Assert.True(targets.Resolver.AliasCount > 0);
    }

    [Fact]
    public void HypernetworkRunsInABf16UNet()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("hypernetworks"));
        File.Copy(TestPaths.GoldenFile("a1111/hypernetworks/tiny_swish_ln.pt"), dir.File("hypernetworks/hn.pt"));
        using var model = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
            DType = ScalarType.BFloat16,
        });
        using var session = new ExtraNetworkSession(model, new ModelsFolder(dir.Path));
        using var plain = session.Generate(TinyModel.Request("a cat"));
        using var hooked = session.Generate(TinyModel.Request("a cat <hypernet:hn>"));
        Assert.NotEqual(plain.Result.Images[0], hooked.Result.Images[0]);
        Assert.Empty(hooked.Warnings);
    }
}
