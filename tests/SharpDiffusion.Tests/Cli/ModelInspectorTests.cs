using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;
using SharpDiffusion.Tests.Diffusers;

namespace SharpDiffusion.Tests.Cli;

public class ModelInspectorTests
{
    [Fact]
    public void DiffusersPipelineIsOneModelAndItsFilesAreNotScannedAgain()
    {
        using var dir = new TempDir();
        Sd15DiffusersFolder.Create(dir.File("sd15"));
        ModelFolderFixture.Create(dir.File("loras"), withBroken: false);

        var reports = new ModelInspector().Inspect(dir.Path).ToList();

        Assert.Equal(["add_detail.safetensors", "tiny.sft", "vae-ft-mse", "sd15"], reports.Select(r => r.Name));
        var sd15 = reports[^1];
        Assert.Equal(ModelFormat.Diffusers, sd15.Format);
        Assert.Equal(686 + 248 + 197, sd15.Classification!.Tensors);
        Assert.Equal(859_520_964 + 83_653_863 + 123_060_557, sd15.Classification.Parameters);
        Assert.Equal("StableDiffusionPipeline", sd15.Metadata["model_index._class_name"]);
    }

    [Fact]
    public void SingleFileCheckpointBesideAPipelineIsReportedToo()
    {
        using var dir = new TempDir();
        string root = Sd15DiffusersFolder.Create(dir.File("stable-diffusion-v1-5"));
        Fixtures.SparseSafetensors.Create(Path.Combine(root, "v1-5-pruned-emaonly.safetensors"), Fixtures.ReferenceInventory.Load("sd15_single_file.tsv"));
        string vae = Path.Combine(root, "vae");

        var reports = new ModelInspector().Inspect(dir.Path).ToList();
        var vaeOnly = new ModelInspector().Inspect(vae).ToList();

        Assert.Equal(["stable-diffusion-v1-5", "v1-5-pruned-emaonly.safetensors"], reports.Select(r => r.Name));
        Assert.Equal(1143, reports[1].Classification!.Tensors);
        Assert.Equal(ModelFormat.Diffusers, Assert.Single(vaeOnly).Format);
    }

    [Fact]
    public void HashesAreNotComputedForFolders()
    {
        using var dir = new TempDir();
        ModelFolderFixture.Create(dir.Path, withBroken: false);

        var reports = new ModelInspector { ComputeHashes = true }.Inspect(dir.Path).ToList();

        Assert.Null(reports.Single(r => r.Format == ModelFormat.Diffusers).Hashes);
        Assert.All(reports.Where(r => r.Format != ModelFormat.Diffusers), r => Assert.NotNull(r.Hashes));
    }

    [Fact]
    public void ValidModelsAfterAnInvalidOneAreStillReported()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("a.ckpt"), []);
        File.WriteAllText(dir.File("b.gguf"), "GGU");
        ModelFolderFixture.Create(dir.File("z"), withBroken: false);

        var reports = new ModelInspector().Inspect(dir.Path).ToList();

        Assert.Equal(5, reports.Count);
        Assert.Contains("empty", reports[0].Error);
        Assert.False(reports[1].IsValid);
        Assert.All(reports.Skip(2), r => Assert.True(r.IsValid));
    }

    [Fact]
    public void AFolderThatCannotBeListedIsOneInvalidReportAndTheScanGoesOn()
    {
        using var dir = new TempDir();
        ModelFolderFixture.Create(dir.File("a"), withBroken: false);
        ModelFolderFixture.Create(dir.File("locked"), withBroken: false);
        ModelFolderFixture.Create(dir.File("z"), withBroken: false);
        string locked = dir.File("locked");
        int modelsPerFolder = new ModelInspector().Inspect(dir.File("a")).Count();
        // Tests run as root, whom permissions do not stop: the listing fails the way .NET reports EACCES.
        var inspector = new ModelInspector
        {
            ListFolder = folder => folder == locked
                ? throw new UnauthorizedAccessException($"Access to the path '{folder}' is denied.")
                : FolderListing.Read(folder),
        };

        var reports = inspector.Inspect(dir.Path).ToList();

        var invalid = Assert.Single(reports, r => !r.IsValid);
        Assert.Equal(locked, invalid.Path);
        Assert.Equal($"{locked}: permission denied: the folder cannot be listed", invalid.Error);
        Assert.Equal(2 * modelsPerFolder, reports.Count(r => r.IsValid));
        Assert.Contains(reports, r => r.IsValid && r.Path.StartsWith(dir.File("z"), StringComparison.Ordinal));
        Assert.DoesNotContain(reports, r => r.Path.StartsWith(locked + Path.DirectorySeparatorChar, StringComparison.Ordinal));
    }

    [Fact]
    public void JsonReportWritesRankAndAlphaAsNumberOrList()
    {
        var single = new ModelClassification { Kind = ModelKind.Lora, Lora = new LoraDetails { Modules = 264 } };
        single.Lora.Ranks.Add(8);
        single.Lora.Alphas.Add(4);
        single.Lora.Targets.AddRange(["unet", "text_encoder"]);
        var mixed = new ModelClassification { Kind = ModelKind.Lora, Lora = new LoraDetails() };
        mixed.Lora.Ranks.AddRange([4, 16]);

        string a = JsonReportWriter.ToJsonLine(new ModelReport { Path = "a", Format = ModelFormat.Safetensors, Classification = single });
        string b = JsonReportWriter.ToJsonLine(new ModelReport { Path = "b", Format = ModelFormat.Safetensors, Classification = mixed });

        Assert.Contains("\"lora\":{\"algorithm\":\"lora\",\"style\":\"kohya\",\"rank\":8,\"alpha\":4,\"targets\":[\"unet\",\"text_encoder\"],\"modules\":264}", a);
        Assert.Contains("\"kind\":\"lora\"", a);
        Assert.Contains("\"rank\":[4,16],\"alpha\":null", b);
    }

    [Fact]
    public void JsonReportWritesOptionalFieldsOnlyWhenSet()
    {
        var c = new ModelClassification { Kind = ModelKind.Checkpoint, Base = BaseFamily.SD1, Precision = "fp16", InputChannels = 9, Variant = "inpaint", HasEma = false };
        c.Components.AddRange(["unet", "vae", "text_encoder"]);
        c.TriggerWords.Add("sks");
        c.Embedding = new EmbeddingDetails { Vectors = 2, Token = "<tok>" };
        c.Embedding.Dims.Add(768);
        c.Hypernetwork = new HypernetworkDetails { Activation = "relu" };
        c.Hypernetwork.LayerStructure.AddRange([1, 2, 1]);
        c.Hypernetwork.Dims.Add(768);

        string json = JsonReportWriter.ToJsonLine(new ModelReport { Path = "m", Format = ModelFormat.TorchZip, Classification = c });
        string bare = JsonReportWriter.ToJsonLine(new ModelReport { Path = "n", Format = ModelFormat.Gguf, Classification = new ModelClassification() });

        Assert.Contains("\"format\":\"torch-zip\"", json);
        Assert.Contains("\"base\":\"sd1\",\"components\":[\"unet\",\"vae\",\"text_encoder\"],\"precision\":\"fp16\"", json);
        Assert.Contains("\"input_channels\":9,\"variant\":\"inpaint\",\"ema\":false,\"trigger_words\":[\"sks\"]", json);
        Assert.Contains("\"embedding\":{\"layout\":\"a1111\",\"vectors\":2,\"dims\":[768],\"token\":\"<tok>\"}", json);
        Assert.Contains("\"hypernetwork\":{\"layer_structure\":[1,2,1],\"activation\":\"relu\",\"layer_norm\":false,\"dropout\":false,\"dims\":[768]}", json);
        foreach (var optional in new[] { "input_channels", "variant", "ema", "trigger_words", "lora", "embedding", "hypernetwork", "hashes", "error", "compatible" })
            Assert.DoesNotContain($"\"{optional}\"", bare);
        Assert.Contains("\"kind\":\"unknown\",\"base\":null", bare);
    }
}
