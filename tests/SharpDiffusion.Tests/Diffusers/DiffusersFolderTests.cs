using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Diffusers;
using SharpDiffusion.Tests.Fixtures;

namespace SharpDiffusion.Tests.Diffusers;

public class DiffusersFolderTests
{
    [Fact]
    public void Sd15PipelineExposesAllComponentsWithPrefixedNames()
    {
        using var dir = new TempDir();
        string root = Sd15DiffusersFolder.Create(dir.File("sd15"));

        using var model = DiffusersFolder.Open(root);

        Assert.Equal(ModelFormat.Diffusers, model.Format);
        Assert.Equal(686 + 248 + 197, model.Tensors.Count);
        Assert.Equal(["text_encoder", "unet", "vae"], model.Components);
        Assert.True(model.IsPipeline);
        var convIn = model.Tensors.Single(t => t.Name == "unet/conv_in.weight");
        Assert.Equal([320L, 4, 3, 3], convIn.Shape);
        Assert.Equal("unet/diffusion_pytorch_model.safetensors", convIn.StorageKey);
        Assert.Equal("vae/diffusion_pytorch_model.safetensors", model.Tensors.Single(t => t.Name == "vae/encoder.conv_in.weight").StorageKey);
        var tokens = model.Tensors.Single(t => t.Name == "text_encoder/text_model.embeddings.token_embedding.weight");
        Assert.Equal([49408L, 768], tokens.Shape);
        Assert.Equal("text_encoder/model.safetensors", tokens.StorageKey);
        Assert.Equal(859_520_964, model.Tensors.Where(t => t.Name.StartsWith("unet/")).Sum(t => t.ElementCount));
        Assert.Equal(83_653_863, model.Tensors.Where(t => t.Name.StartsWith("vae/")).Sum(t => t.ElementCount));
        Assert.Equal(123_060_557, model.Tensors.Where(t => t.Name.StartsWith("text_encoder/")).Sum(t => t.ElementCount));
        Assert.All(model.Tensors, t => Assert.Contains('/', t.Name));
    }

    [Fact]
    public void Sd15PipelineMetadataHasModelIndexAndConfigScalars()
    {
        using var dir = new TempDir();
        using var model = DiffusersFolder.Open(Sd15DiffusersFolder.Create(dir.File("sd15")));
        var m = model.Metadata;

        Assert.Equal("StableDiffusionPipeline", m["model_index._class_name"]);
        Assert.Equal("0.6.0", m["model_index._diffusers_version"]);
        Assert.Equal("[\"diffusers\",\"UNet2DConditionModel\"]", m["model_index.unet"]);
        Assert.Equal("[\"transformers\",\"CLIPTextModel\"]", m["model_index.text_encoder"]);
        Assert.Equal("UNet2DConditionModel", m["unet.config._class_name"]);
        Assert.Equal("4", m["unet.config.in_channels"]);
        Assert.Equal("768", m["unet.config.cross_attention_dim"]);
        Assert.Equal("[320,640,1280,1280]", m["unet.config.block_out_channels"]);
        Assert.Equal("false", m["unet.config.center_input_sample"]);
        Assert.Equal("AutoencoderKL", m["vae.config._class_name"]);
        Assert.Equal("quick_gelu", m["text_encoder.config.hidden_act"]);
        Assert.Equal("[\"CLIPTextModel\"]", m["text_encoder.config.architectures"]);
        Assert.Equal("epsilon", m["scheduler.config.prediction_type"]);
        Assert.Equal("null", m["scheduler.config.trained_betas"]);
        Assert.Equal("text_encoder,unet,vae", m["diffusers.components"]);
        Assert.Equal("feature_extractor,safety_checker", m["diffusers.missing_components"]);
        Assert.Equal("unet/diffusion_pytorch_model.safetensors", m["unet.weights"]);
        Assert.False(m.ContainsKey("unet.variant"));
    }

    [Fact]
    public void SizeCountsEveryFileRead()
    {
        using var dir = new TempDir();
        string root = Sd15DiffusersFolder.Create(dir.File("sd15"));
        using var model = DiffusersFolder.Open(root);

        long expected = new[]
        {
            "model_index.json", "scheduler/scheduler_config.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
            "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json", "text_encoder/model.safetensors",
        }.Sum(f => new FileInfo(Path.Combine(root, f)).Length);
        Assert.Equal(expected, model.SizeBytes);
        Assert.True(model.SizeBytes > 4_000_000_000, "fp32 SD1.5 weights are over 4 GB");
    }

    [Fact]
    public void ModelFileReaderOpensPipelineAndComponentFolders()
    {
        using var dir = new TempDir();
        string root = Sd15DiffusersFolder.Create(dir.File("sd15"));

        using (var pipeline = ModelFileReader.Open(root)) Assert.IsType<DiffusersFolder>(pipeline);
        using var vae = ModelFileReader.Open(Path.Combine(root, "vae"));
        Assert.IsType<DiffusersFolder>(vae);
        Assert.Equal(248, vae.Tensors.Count);
    }

    [Theory]
    [InlineData("AutoencoderKL", "vae", "vae/encoder.conv_in.weight")]
    [InlineData("UNet2DConditionModel", "unet", "unet/encoder.conv_in.weight")]
    [InlineData("ControlNetModel", "controlnet", "controlnet/encoder.conv_in.weight")]
    [InlineData("CLIPTextModelWithProjection", "text_encoder_2", "text_encoder_2/encoder.conv_in.weight")]
    public void LoneComponentFolderIsNamedFromItsClass(string className, string component, string tensorName)
    {
        using var dir = new TempDir();
        // The folder's own name says nothing: the class decides.
        string folder = Sd15DiffusersFolder.CreateComponent(dir.File("downloaded"), new Dictionary<string, object> { ["_class_name"] = className, ["scaling_factor"] = 0.18215 },
            "diffusion_pytorch_model.safetensors", Sd15DiffusersFolder.Vae);

        using var model = DiffusersFolder.Open(folder);

        Assert.False(model.IsPipeline);
        Assert.Equal([component], model.Components);
        Assert.Contains(model.Tensors, t => t.Name == tensorName);
        Assert.Equal("0.18215", model.Metadata[component + ".config.scaling_factor"]);
        Assert.Equal("diffusion_pytorch_model.safetensors", model.Tensors[0].StorageKey);
    }

    [Fact]
    public void TransformersTextEncoderFolderIsNamedFromItsArchitectures()
    {
        using var dir = new TempDir();
        string folder = Sd15DiffusersFolder.CreateComponent(dir.File("clip"), Sd15DiffusersFolder.TextEncoderConfig, "model.safetensors", Sd15DiffusersFolder.TextEncoder);

        using var model = DiffusersFolder.Open(folder);

        Assert.Equal(["text_encoder"], model.Components);
        Assert.Contains(model.Tensors, t => t.Name == "text_encoder/text_model.final_layer_norm.weight");
    }

    [Fact]
    public void UnknownClassFallsBackToTheFolderName()
    {
        using var dir = new TempDir();
        string folder = Sd15DiffusersFolder.CreateComponent(dir.File("Image_Encoder"), new { _class_name = "SomethingNew" }, "model.safetensors", Sd15DiffusersFolder.Vae.Take(3));

        using var model = DiffusersFolder.Open(folder);

        Assert.Equal(["image_encoder"], model.Components);
    }

    [Fact]
    public void PlainWeightsArePreferredOverFp16Variant()
    {
        using var dir = new TempDir();
        string folder = Sd15DiffusersFolder.CreateComponent(dir.File("vae"), Sd15DiffusersFolder.VaeConfig, "diffusion_pytorch_model.safetensors", Sd15DiffusersFolder.Vae);
        SparseSafetensors.Create(Path.Combine(folder, "diffusion_pytorch_model.fp16.safetensors"), Sd15DiffusersFolder.Vae.WithFloatDType("F16"));

        using var model = DiffusersFolder.Open(folder);

        Assert.All(model.Tensors, t => Assert.Equal(TensorDType.F32, t.DType));
        Assert.Equal("diffusion_pytorch_model.safetensors", model.Metadata["vae.weights"]);
        Assert.False(model.Metadata.ContainsKey("vae.variant"));
    }

    [Fact]
    public void Fp16VariantIsUsedWhenItIsTheOnlyWeightFile()
    {
        using var dir = new TempDir();
        string folder = dir.File("vae");
        Directory.CreateDirectory(folder);
        SparseSafetensors.WriteJson(Path.Combine(folder, "config.json"), Sd15DiffusersFolder.VaeConfig);
        SparseSafetensors.Create(Path.Combine(folder, "diffusion_pytorch_model.fp16.safetensors"), Sd15DiffusersFolder.Vae.WithFloatDType("F16"));

        using var model = DiffusersFolder.Open(folder);

        Assert.Equal(248, model.Tensors.Count);
        Assert.All(model.Tensors, t => Assert.Equal(TensorDType.F16, t.DType));
        Assert.Equal("fp16", model.Metadata["vae.variant"]);
        Assert.Equal("diffusion_pytorch_model.fp16.safetensors", model.Tensors[0].StorageKey);
    }

    [Fact]
    public void ShardedWeightsAreJoinedThroughTheIndex()
    {
        using var dir = new TempDir();
        string folder = dir.File("unet");
        Directory.CreateDirectory(folder);
        SparseSafetensors.WriteJson(Path.Combine(folder, "config.json"), Sd15DiffusersFolder.UnetConfig);
        var unet = Sd15DiffusersFolder.Unet;
        var first = unet.Take(300).ToList();
        var second = unet.Skip(300).ToList();
        SparseSafetensors.Create(Path.Combine(folder, "diffusion_pytorch_model-00001-of-00002.safetensors"), first);
        SparseSafetensors.Create(Path.Combine(folder, "diffusion_pytorch_model-00002-of-00002.safetensors"), second);
        var weightMap = first.ToDictionary(t => t.Name, _ => "diffusion_pytorch_model-00001-of-00002.safetensors");
        foreach (var t in second) weightMap[t.Name] = "diffusion_pytorch_model-00002-of-00002.safetensors";
        SparseSafetensors.WriteJson(Path.Combine(folder, "diffusion_pytorch_model.safetensors.index.json"),
            new { metadata = new { total_size = 3_438_083_856L }, weight_map = weightMap });

        using var model = DiffusersFolder.Open(folder);

        Assert.Equal(686, model.Tensors.Count);
        Assert.Equal(unet.Select(t => "unet/" + t.Name), model.Tensors.Select(t => t.Name));
        Assert.Equal("diffusion_pytorch_model-00001-of-00002.safetensors", model.Tensors[0].StorageKey);
        Assert.Equal("diffusion_pytorch_model-00002-of-00002.safetensors", model.Tensors[^1].StorageKey);
        Assert.Equal(859_520_964, model.Tensors.Sum(t => t.ElementCount));
    }

    [Fact]
    public void ShardIndexPromisingAMissingTensorIsRejected()
    {
        using var dir = new TempDir();
        string folder = dir.File("vae");
        Directory.CreateDirectory(folder);
        SparseSafetensors.WriteJson(Path.Combine(folder, "config.json"), Sd15DiffusersFolder.VaeConfig);
        SparseSafetensors.Create(Path.Combine(folder, "shard1.safetensors"), Sd15DiffusersFolder.Vae.Take(10));
        string index = Path.Combine(folder, "diffusion_pytorch_model.safetensors.index.json");
        SparseSafetensors.WriteJson(index, new { weight_map = new Dictionary<string, string> { ["encoder.conv_in.weight"] = "shard1.safetensors", ["decoder.mid_block.attentions.0.to_q.weight"] = "shard1.safetensors" } });

        var e = Assert.Throws<InvalidModelFileException>(() => DiffusersFolder.Open(folder));

        Assert.Equal(index, e.FilePath);
        Assert.Contains("decoder.mid_block.attentions.0.to_q.weight", e.Problem);
    }

    [Fact]
    public void ShardIndexNamingAMissingShardIsRejected()
    {
        using var dir = new TempDir();
        string folder = dir.File("vae");
        Directory.CreateDirectory(folder);
        SparseSafetensors.WriteJson(Path.Combine(folder, "config.json"), Sd15DiffusersFolder.VaeConfig);
        SparseSafetensors.WriteJson(Path.Combine(folder, "diffusion_pytorch_model.safetensors.index.json"),
            new { weight_map = new Dictionary<string, string> { ["encoder.conv_in.weight"] = "gone.safetensors" } });

        var e = Assert.Throws<InvalidModelFileException>(() => DiffusersFolder.Open(folder));

        Assert.Contains("gone.safetensors", e.Problem);
    }

    [Fact]
    public void ReadTensorDataDelegatesToTheComponentFile()
    {
        using var dir = new TempDir();
        string folder = dir.File("vae");
        Directory.CreateDirectory(folder);
        SparseSafetensors.WriteJson(Path.Combine(folder, "config.json"), Sd15DiffusersFolder.VaeConfig);
        float[] bias = Enumerable.Range(0, 128).Select(i => i * 0.5f - 3f).ToArray();
        byte[] biasBytes = new byte[bias.Length * 4];
        Buffer.BlockCopy(bias, 0, biasBytes, 0, biasBytes.Length);
        SparseSafetensors.Create(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), Sd15DiffusersFolder.Vae.Tuples(),
            data: name => name == "encoder.conv_in.bias" ? biasBytes : null);

        using var model = DiffusersFolder.Open(folder);
        var tensor = model.Tensors.Single(t => t.Name == "vae/encoder.conv_in.bias");
        var read = new byte[tensor.ByteLength];
        model.ReadTensorData(tensor, read);

        Assert.Equal(biasBytes, read);
        Assert.Throws<ArgumentException>(() => model.ReadTensorData(new TensorInfo("vae/nope", TensorDType.F32, [1]), new byte[4]));
    }

    [Fact]
    public void BinWeightsAreOpenedThroughTheTorchReader()
    {
        using var dir = new TempDir();
        string folder = dir.File("vae");
        Directory.CreateDirectory(folder);
        SparseSafetensors.WriteJson(Path.Combine(folder, "config.json"), Sd15DiffusersFolder.VaeConfig);
        string bin = Path.Combine(folder, "diffusion_pytorch_model.bin");
        // A zip signature and nothing after it: the torch reader must be the one to reject it, naming the .bin.
        File.WriteAllBytes(bin, [(byte)'P', (byte)'K', 3, 4, 0, 0, 0, 0]);

        var e = Assert.Throws<InvalidModelFileException>(() => DiffusersFolder.Open(folder));

        Assert.Equal(bin, e.FilePath);
    }

    [Fact]
    public void ComponentWithConfigButNoWeightsIsAClearError()
    {
        using var dir = new TempDir();
        string root = Sd15DiffusersFolder.Create(dir.File("sd15"));
        File.Delete(Path.Combine(root, "unet", "diffusion_pytorch_model.safetensors"));

        var e = Assert.Throws<InvalidModelFileException>(() => DiffusersFolder.Open(root));

        Assert.EndsWith("unet", e.FilePath);
        Assert.Contains("no weight file", e.Problem);
    }

    [Fact]
    public void ModelIndexWithoutAnyWeightsIsRejected()
    {
        using var dir = new TempDir();
        SparseSafetensors.WriteJson(dir.File("model_index.json"), Sd15DiffusersFolder.ModelIndex);

        var e = Assert.Throws<InvalidModelFileException>(() => DiffusersFolder.Open(dir.Path));

        Assert.Contains("no component folder with weights", e.Problem);
    }

    [Fact]
    public void ConfigWithByteOrderMarkIsRead()
    {
        using var dir = new TempDir();
        string folder = Sd15DiffusersFolder.CreateComponent(dir.File("vae"), Sd15DiffusersFolder.VaeConfig, "diffusion_pytorch_model.safetensors", Sd15DiffusersFolder.Vae);
        string config = Path.Combine(folder, "config.json");
        File.WriteAllBytes(config, [0xEF, 0xBB, 0xBF, .. File.ReadAllBytes(config)]);

        using var model = DiffusersFolder.Open(folder);

        Assert.Equal("AutoencoderKL", model.Metadata["vae.config._class_name"]);
    }

    [Fact]
    public void CorruptModelIndexIsRejectedNamingTheFile()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("model_index.json"), "{\"_class_name\": ");

        var e = Assert.Throws<InvalidModelFileException>(() => DiffusersFolder.Open(dir.Path));

        Assert.EndsWith("model_index.json", e.FilePath);
        Assert.Contains("not valid JSON", e.Problem);
    }
}
