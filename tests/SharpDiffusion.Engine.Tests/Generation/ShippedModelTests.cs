using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Engine.Pipeline;

namespace SharpDiffusion.Engine.Tests.Generation;

/// <summary>The shipped model is found without arguments, environment variables override it, and its config gives the size.</summary>
public class ShippedModelTests
{
    [Fact]
    public void TheRepositoryShipsSharpEmojiWithItsConfigAndTokenizer()
    {
        var path = ShippedModel.CheckpointPath(_ => null);
        Assert.NotNull(path);
        Assert.EndsWith(Path.Combine("models", "Stable-diffusion", ShippedModel.FileName), path);
        Assert.True(File.Exists(Path.ChangeExtension(path, ".yaml")), "the config ships beside the checkpoint");
        Assert.True(File.Exists(Path.Combine(Path.ChangeExtension(path, ".tokenizer"), "vocab.json")), "the fitted tokenizer ships beside the checkpoint");
        Assert.Equal(48, ModelNativeSize.Find(path));
        Assert.True(new FileInfo(path).Length <= 25L * 1024 * 1024, "the shipped model stays within 25 MB");
    }

    [Fact]
    public void EnvironmentVariablesOverrideTheShippedLocations()
    {
        using var dir = new TempDir();
        var env = new Dictionary<string, string?> { [ShippedModel.ModelEnvironment] = dir.File("mine.safetensors"), [ShippedModel.ModelsDirEnvironment] = dir.Path };
        Assert.Equal(dir.File("mine.safetensors"), ShippedModel.CheckpointPath(k => env.GetValueOrDefault(k)));
        Assert.Equal(dir.Path, ShippedModel.ModelsFolder(k => env.GetValueOrDefault(k)));
        // A models folder without the shipped checkpoint gives no default model rather than a wrong one.
        env.Remove(ShippedModel.ModelEnvironment);
        Assert.Null(ShippedModel.CheckpointPath(k => env.GetValueOrDefault(k)));
    }

    [Fact]
    public void NativeSizeIsReadOnlyFromAConfigThatStatesIt()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("a.safetensors"), "");
        Assert.Null(ModelNativeSize.Find(dir.File("a.safetensors")));
        File.WriteAllText(dir.File("a.yaml"), "{ \"default_size\": 64, \"ldm_config\": {} }");
        Assert.Equal(64, ModelNativeSize.Find(dir.File("a.safetensors")));
        File.WriteAllText(dir.File("b.yaml"), "model:\n  params:\n    scale_factor: 0.18215\n");
        Assert.Null(ModelNativeSize.Find(dir.File("b.safetensors"), dir.File("b.yaml")));
    }
}
