using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Tests.Embeddings;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

public sealed class EmbeddingsInJobsTests
{
    [Fact]
    public void EmbeddingsOfTheModelsFolderApplyInPositiveAndNegativePromptsAndAreHashed()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("embeddings"));
        var g = new Generator(3);
        SafetensorsTestWriter.Write(dir.File("embeddings/tinytok.safetensors"), [("emb_params", randn(2, 32, generator: g) * 2)]);
        SafetensorsTestWriter.Write(dir.File("embeddings/widetok.safetensors"), [("emb_params", randn(1, 48, generator: g))]);
        using var model = TinyModel.Load();
        using var withFolder = new ExtraNetworkSession(model, new ModelsFolder(dir.Path));
        using var without = new ExtraNetworkSession(model, null);

        using var plain = without.Generate(TinyModel.Request("a tinytok cat"));
        using var positive = withFolder.Generate(TinyModel.Request("a tinytok cat"));
        using var negative = withFolder.Generate(TinyModel.Request("a cat", "tinytok"));
        using var negativePlain = without.Generate(TinyModel.Request("a cat", "tinytok"));
        using var unused = withFolder.Generate(TinyModel.Request("a cat"));

        Assert.NotEqual(plain.Result.Images[0], positive.Result.Images[0]);
        Assert.NotEqual(negativePlain.Result.Images[0], negative.Result.Images[0]);
        var hashes = Assert.Single(positive.InfotextFields, f => f.Key == "TI hashes").Value;
        Assert.Matches("^tinytok: [0-9a-f]{12}$", hashes);
        Assert.Contains(negative.InfotextFields, f => f.Key == "TI hashes");
        Assert.DoesNotContain(unused.InfotextFields, f => f.Key == "TI hashes");
        // The 48-wide embedding does not fit the 32-wide encoder: said once, on the first job.
        Assert.Contains(positive.Warnings, w => w.Contains("widetok"));
        Assert.DoesNotContain(negative.Warnings, w => w.Contains("widetok"));
    }
}
