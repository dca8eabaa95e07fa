using System.Text.Json;
using System.Text.Json.Nodes;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Diffusers;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Inspection;
using SharpDiffusion.Tests.Cli;
using SharpDiffusion.Tests.Fixtures;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

/// <summary>
/// convert --to diffusers: an SD1.x single file becomes a diffusers pipeline folder that converts back bit for bit,
/// whose configs are derived from the weights (the full SD1.5 key set gives diffusers' SD1.5 values) and whose key
/// names are those of a real SD1.5 diffusers export.
/// </summary>
public sealed class SingleFileToDiffusersTests : IDisposable
{
    private static readonly string Tiny = TestPaths.GoldenFile("tiny_sd1.safetensors");
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static JsonObject ReadJson(string path) => JsonNode.Parse(File.ReadAllText(path))!.AsObject();

    /// <summary>A config as a reader sees it: parsed from its JSON text (numbers readable as int or long).</summary>
    private static JsonObject Config(DiffusersExporter.FolderPlan plan, string component) =>
        JsonNode.Parse(plan.Configs[component].ToJsonString())!.AsObject();

    private static long[] Longs(JsonNode? node) => node!.AsArray().Select(n => n!.GetValue<long>()).ToArray();

    private static DiffusersExportResult Export(string input, string output) =>
        DiffusersExporter.Export(new ConvertOptions { Input = input, Output = output });

    [Fact]
    public void Tiny_checkpoint_round_trips_through_a_diffusers_folder_bit_for_bit()
    {
        string folder = _dir.File("tiny-diffusers");
        var result = Export(Tiny, folder);
        Assert.Equal(["unet", "vae", "text_encoder", "scheduler"], result.Folders);
        Assert.False(result.TokenizerWritten);
        Assert.Equal(13, result.Dropped); // 12 DDPM buffers and position_ids
        Assert.False(Directory.Exists(Path.Combine(folder, "tokenizer")));
        Assert.Empty(Directory.EnumerateDirectories(_dir.Path, ".tiny-diffusers.tmp-*"));

        string back = _dir.File("tiny-back.safetensors");
        CheckpointConverter.Convert(new ConvertOptions { Input = folder, Output = back });
        using var original = SafetensorsFile.Open(Tiny);
        using var converted = SafetensorsFile.Open(back);
        var expectedNames = original.Tensors.Select(t => t.Name)
            .Where(n => !Conversion.ReferenceInventory.DdpmBuffers.Contains(n) && !n.EndsWith("position_ids", StringComparison.Ordinal));
        Assert.Equal(expectedNames.Order(StringComparer.Ordinal), converted.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.Equal(result.Tensors, converted.Tensors.Count);
        TensorAssert.EachEqualsTheOriginal(original, converted);
    }

    [Fact]
    public void Tiny_folder_has_configs_from_its_weights_and_linear_vae_attention()
    {
        string folder = _dir.File("tiny");
        Export(Tiny, folder);
        var unet = ReadJson(Path.Combine(folder, "unet", "config.json"));
        Assert.Equal([32, 64], Longs(unet["block_out_channels"]));
        Assert.Equal(1, unet["layers_per_block"]!.GetValue<int>());
        Assert.Equal(32, unet["cross_attention_dim"]!.GetValue<int>());
        Assert.Equal(4, unet["in_channels"]!.GetValue<int>());
        Assert.Equal(["DownBlock2D", "CrossAttnDownBlock2D"], unet["down_block_types"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(["CrossAttnUpBlock2D", "UpBlock2D"], unet["up_block_types"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(256, unet["sample_size"]!.GetValue<int>()); // 512 px over the tiny VAE's factor 2
        var vae = ReadJson(Path.Combine(folder, "vae", "config.json"));
        Assert.Equal([32, 64], Longs(vae["block_out_channels"]));
        Assert.Equal(1, vae["layers_per_block"]!.GetValue<int>());
        var text = ReadJson(Path.Combine(folder, "text_encoder", "config.json"));
        Assert.Equal(32, text["hidden_size"]!.GetValue<int>());
        Assert.Equal(2, text["num_hidden_layers"]!.GetValue<int>());
        Assert.Equal(128, text["intermediate_size"]!.GetValue<int>());
        Assert.Equal("float32", text["torch_dtype"]!.GetValue<string>());

        using var vaeWeights = SafetensorsFile.Open(Path.Combine(folder, "vae", "diffusion_pytorch_model.safetensors"));
        Assert.Equal([64L, 64L], vaeWeights.Tensors.Single(t => t.Name == "decoder.mid_block.attentions.0.to_q.weight").Shape);
        Assert.Equal("pt", vaeWeights.Metadata["format"]);
        using var textWeights = SafetensorsFile.Open(Path.Combine(folder, "text_encoder", "model.safetensors"));
        Assert.DoesNotContain(textWeights.Tensors, t => t.Name.Contains("position_ids", StringComparison.Ordinal));
        Assert.All(textWeights.Tensors, t => Assert.StartsWith("text_model.", t.Name));
    }

    [Fact]
    public void Our_diffusers_reader_opens_the_folder_and_the_classifier_calls_it_an_sd1_checkpoint()
    {
        string folder = _dir.File("tiny");
        Export(Tiny, folder);
        using var opened = DiffusersFolder.Open(folder);
        Assert.True(opened.IsPipeline);
        Assert.Equal("StableDiffusionPipeline", opened.Metadata["model_index._class_name"]);
        Assert.Equal("PNDMScheduler", opened.Metadata["scheduler.config._class_name"]);
        var classification = ModelClassifier.Classify(opened);
        Assert.Equal(ModelKind.Checkpoint, classification.Kind);
        Assert.Equal(BaseFamily.SD1, classification.Base);
    }

    [Fact]
    public void Model_index_and_scheduler_are_the_converters_sd1_pipeline()
    {
        string folder = _dir.File("tiny");
        Export(Tiny, folder);
        var index = ReadJson(Path.Combine(folder, "model_index.json"));
        Assert.Equal("StableDiffusionPipeline", index["_class_name"]!.GetValue<string>());
        Assert.Equal(["diffusers", "UNet2DConditionModel"], index["unet"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(["transformers", "CLIPTokenizer"], index["tokenizer"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal([null, null], index["safety_checker"]!.AsArray().Select(n => n?.ToJsonString()));
        Assert.Equal([null, null], index["feature_extractor"]!.AsArray().Select(n => n?.ToJsonString()));
        var scheduler = ReadJson(Path.Combine(folder, "scheduler", "scheduler_config.json"));
        Assert.Equal("PNDMScheduler", scheduler["_class_name"]!.GetValue<string>());
        Assert.Equal(0.00085, scheduler["beta_start"]!.GetValue<double>());
        Assert.Equal(0.012, scheduler["beta_end"]!.GetValue<double>());
        Assert.Equal("scaled_linear", scheduler["beta_schedule"]!.GetValue<string>());
        Assert.Equal(1000, scheduler["num_train_timesteps"]!.GetValue<int>());
        Assert.True(scheduler["skip_prk_steps"]!.GetValue<bool>());
        Assert.Equal(1, scheduler["steps_offset"]!.GetValue<int>());
        Assert.False(scheduler["set_alpha_to_one"]!.GetValue<bool>());
    }

    /// <summary>A sparse single file with the real SD1.5 key set (no data written), opened for <see cref="DiffusersExporter.Describe"/>.</summary>
    private DiffusersExporter.FolderPlan DescribeSd15(Func<Conversion.InventoryEntry, Conversion.InventoryEntry>? edit = null)
    {
        string path = _dir.File($"sd15-{Guid.NewGuid():N}.safetensors");
        var entries = Conversion.ReferenceInventory.SingleFile.Select(edit ?? (e => e));
        SparseSafetensors.Create(path, entries.Select(e => (e.Name, e.DType, e.Shape)));
        using var file = SafetensorsFile.Open(path);
        return DiffusersExporter.Describe(new ConvertOptions { Input = path, Output = _dir.File("unused") }, file);
    }

    [Fact]
    public void Full_sd15_key_set_gives_diffusers_sd15_configs()
    {
        var plan = DescribeSd15();
        var unet = Config(plan, "unet");
        Assert.Equal([320, 640, 1280, 1280], Longs(unet["block_out_channels"]));
        Assert.Equal(2, unet["layers_per_block"]!.GetValue<int>());
        Assert.Equal(8, unet["attention_head_dim"]!.GetValue<int>());
        Assert.Equal(768, unet["cross_attention_dim"]!.GetValue<int>());
        Assert.Equal(64, unet["sample_size"]!.GetValue<int>());
        Assert.Equal(4, unet["in_channels"]!.GetValue<int>());
        Assert.Equal(4, unet["out_channels"]!.GetValue<int>());
        Assert.False(unet["use_linear_projection"]!.GetValue<bool>());
        Assert.Equal(["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            unet["down_block_types"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
            unet["up_block_types"]!.AsArray().Select(n => n!.GetValue<string>()));

        var vae = Config(plan, "vae");
        Assert.Equal([128, 256, 512, 512], Longs(vae["block_out_channels"]));
        Assert.Equal(4, vae["latent_channels"]!.GetValue<int>());
        Assert.Equal(512, vae["sample_size"]!.GetValue<int>());
        Assert.Equal(2, vae["layers_per_block"]!.GetValue<int>());
        Assert.Equal(3, vae["in_channels"]!.GetValue<int>());
        Assert.Equal(3, vae["out_channels"]!.GetValue<int>());

        var text = Config(plan, "text_encoder");
        Assert.Equal(768, text["hidden_size"]!.GetValue<int>());
        Assert.Equal(12, text["num_hidden_layers"]!.GetValue<int>());
        Assert.Equal(12, text["num_attention_heads"]!.GetValue<int>());
        Assert.Equal(3072, text["intermediate_size"]!.GetValue<int>());
        Assert.Equal(77, text["max_position_embeddings"]!.GetValue<int>());
        Assert.Equal(49408, text["vocab_size"]!.GetValue<int>());
        Assert.Equal("quick_gelu", text["hidden_act"]!.GetValue<string>());
        Assert.Equal("float32", text["torch_dtype"]!.GetValue<string>());

        // The values the SD1.5 diffusers test fixture (runwayml's configs) holds agree key for key.
        foreach (var (component, reference) in new[] { ("unet", Diffusers.Sd15DiffusersFolder.UnetConfig), ("vae", Diffusers.Sd15DiffusersFolder.VaeConfig),
                     ("text_encoder", Diffusers.Sd15DiffusersFolder.TextEncoderConfig) })
        {
            var expected = JsonNode.Parse(JsonSerializer.Serialize(reference))!.AsObject();
            foreach (var (key, value) in expected)
            {
                if (key is "_diffusers_version" or "torch_dtype") continue;
                Assert.True(JsonNode.DeepEquals(value, Config(plan, component)[key]), $"{component}/{key}: {Config(plan, component)[key]?.ToJsonString()} instead of {value?.ToJsonString()}");
            }
        }
    }

    [Fact]
    public void Full_sd15_key_set_gets_the_key_names_and_shapes_of_a_real_diffusers_export()
    {
        var plan = DescribeSd15();
        foreach (var (component, inventory) in new[]
                 {
                     ("unet", "sd15_diffusers_unet.tsv"), ("vae", "sd15_diffusers_vae.tsv"), ("text_encoder", "sd15_diffusers_text_encoder.tsv"),
                 })
        {
            // transformers has kept position_ids out of saved CLIP weights since 4.31 (a non-persistent buffer).
            var expected = Conversion.ReferenceInventory.Load(inventory).Where(e => !e.Name.EndsWith("position_ids", StringComparison.Ordinal))
                .ToDictionary(e => e.Name, e => e.Shape);
            var actual = plan.Entries.Where(e => e.Component == component).ToDictionary(e => e.Key, e => e.Shape);
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
            foreach (var (key, shape) in expected) Assert.True(shape.SequenceEqual(actual[key]), $"{component}/{key}: [{string.Join(",", actual[key])}]");
        }
        Assert.Equal(13, plan.Dropped);
    }

    [Fact]
    public void An_fp16_inpainting_checkpoint_gets_nine_input_channels_and_a_float16_text_encoder()
    {
        var plan = DescribeSd15(e => (e.Name == "model.diffusion_model.input_blocks.0.0.weight" ? e with { Shape = [320, 9, 3, 3] } : e)
            with { DType = e.DType == "F32" ? "F16" : e.DType });
        Assert.Equal("float16", Config(plan, "text_encoder")["torch_dtype"]!.GetValue<string>());
        var unet = Config(plan, "unet");
        Assert.Equal(9, unet["in_channels"]!.GetValue<int>());
        Assert.Equal(4, unet["out_channels"]!.GetValue<int>());
    }

    [Fact]
    public void A_ckpt_with_ema_exports_the_ema_unet_at_fp16_when_asked()
    {
        var tiny = CheckpointFixture.Sd1();
        var emaSource = tiny.Perturbed(5);
        var ema = emaSource.Tensors.Where(t => t.Name.StartsWith("model.diffusion_model.", StringComparison.Ordinal))
            .Select(t => t with { Name = CheckpointKeys.EmaKeyFor(t.Name)! }).ToArray();
        string input = tiny.With(ema).With(CheckpointFixture.Float("model_ema.decay", [], 0.9999f)).WriteCkpt(_dir.File("ema.ckpt"));

        string folder = _dir.File("ema-diffusers");
        var result = DiffusersExporter.Export(new ConvertOptions { Input = input, Output = folder, EmaOnly = true, Precision = TensorDType.F16 });
        Assert.Equal(ema.Length, result.FromEma);
        Assert.Equal(13 + ema.Length + 1, result.Dropped); // DDPM buffers, position_ids, the EMA copies and the decay

        using var unet = SafetensorsFile.Open(Path.Combine(folder, "unet", "diffusion_pytorch_model.safetensors"));
        var emaTensor = emaSource["model.diffusion_model.input_blocks.0.0.weight"];
        var written = unet.Tensors.Single(t => t.Name == "conv_in.weight");
        Assert.Equal(TensorDType.F16, written.DType);
        var bytes = new byte[written.ByteLength];
        unet.ReadTensorData(written, bytes);
        Assert.Equal(DTypeConversion.FromSingle(emaTensor.Floats, TensorDType.F16), bytes);
        Assert.Equal("float16", ReadJson(Path.Combine(folder, "text_encoder", "config.json"))["torch_dtype"]!.GetValue<string>());
        Assert.Equal("torch-zip", JsonDocument.Parse(unet.Metadata[CheckpointConverter.MetadataKey]).RootElement.GetProperty("source_format").GetString());
    }

    [Fact]
    public void A_vocabulary_beside_the_input_becomes_the_tokenizer_folder()
    {
        string models = Directory.CreateDirectory(_dir.File("models")).FullName;
        string input = Path.Combine(models, "tiny.safetensors");
        File.Copy(Tiny, input);
        foreach (var name in new[] { "vocab.json", "merges.txt" }) File.Copy(TestPaths.GoldenFile("clip/" + name), Path.Combine(models, name));

        string folder = _dir.File("with-tokenizer");
        var result = Export(input, folder);
        Assert.True(result.TokenizerWritten);
        Assert.Contains("tokenizer", result.Folders);
        Assert.True(File.ReadAllBytes(Path.Combine(models, "vocab.json")).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(folder, "tokenizer", "vocab.json"))));
        Assert.Equal(77, ReadJson(Path.Combine(folder, "tokenizer", "tokenizer_config.json"))["model_max_length"]!.GetValue<int>());
        Assert.True(File.Exists(Path.Combine(folder, "tokenizer", "merges.txt")));
    }

    [Fact]
    public void A_non_empty_target_is_refused_and_left_alone_and_an_empty_one_is_filled()
    {
        string busy = Directory.CreateDirectory(_dir.File("busy")).FullName;
        File.WriteAllText(Path.Combine(busy, "keep.txt"), "mine");
        var e = Assert.Throws<WorkshopException>(() => Export(Tiny, busy));
        Assert.Contains("not empty", e.Message);
        Assert.Equal(["keep.txt"], Directory.EnumerateFileSystemEntries(busy).Select(Path.GetFileName));

        string empty = Directory.CreateDirectory(_dir.File("empty")).FullName;
        Export(Tiny, empty);
        Assert.True(File.Exists(Path.Combine(empty, "model_index.json")));
    }

    [Theory]
    [InlineData("tiny_sd2v.safetensors", "SD2")]
    [InlineData("tiny_sdxl.safetensors", "SDXL")]
    public void Other_families_are_refused_before_anything_is_written(string model, string family)
    {
        string folder = _dir.File("other");
        var e = Assert.Throws<WorkshopException>(() => Export(TestPaths.GoldenFile(model), folder));
        Assert.Contains(family, e.Message);
        Assert.False(Directory.Exists(folder));
        Assert.Empty(Directory.EnumerateDirectories(_dir.Path, ".other.tmp-*"));
    }

    [Fact]
    public void Cli_picks_diffusers_for_an_extensionless_out_and_says_the_tokenizer_is_missing()
    {
        string folder = _dir.File("cli-out");
        var r = CliRunner.Run("convert", Tiny, "--out", folder);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("unet/, vae/, text_encoder/, scheduler/", r.Stdout);
        Assert.Contains("tokenizer/ not written", r.Stdout);
        Assert.True(File.Exists(Path.Combine(folder, "unet", "diffusion_pytorch_model.safetensors")));

        string single = _dir.File("cli-single.safetensors");
        Assert.Equal(0, CliRunner.Run("convert", folder, "--out", single).ExitCode);
        Assert.True(File.Exists(single));

        var refused = CliRunner.Run("convert", folder, "--out", _dir.File("again"), "--to", "diffusers");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("already a diffusers folder", refused.Stderr);
    }
}
