using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Cli;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Inspection;
using SharpDiffusion.Tests.Fixtures;
using SharpDiffusion.Tests.Fixtures.Torch;

namespace SharpDiffusion.Engine.Tests.Pipeline;

/// <summary>
/// The golden tiny SD1 checkpoint saved four other ways: a diffusers folder written by our own exporter
/// (<c>convert --to diffusers</c>), a copy with the pre-4.x transformers text-encoder names, a Lightning-style
/// <c>.ckpt</c> (<c>{"state_dict": ...}</c>) and one wrapped twice. Written once for the tests below.
/// </summary>
public sealed class CheckpointSourcesFixture : IDisposable
{
    private readonly TempDir _dir = new();

    public CheckpointSourcesFixture()
    {
        var convert = CliHarness.Run("convert", SingleFile, "--out", Diffusers, "--to", "diffusers");
        if (convert.Code != 0) throw new InvalidOperationException("convert --to diffusers failed: " + convert.Stderr);
        using var original = SafetensorsFile.Open(SingleFile);
        SafetensorsWriter.Write(LegacyTextEncoder, original.Tensors.Select(t =>
            TensorToWrite.FromModelFile(original, t) with { Name = t.Name.Replace("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer.", StringComparison.Ordinal) }));
        WriteCkpt(original, StateDictCkpt, sd => new FixtureDict { { "epoch", 3L }, { "global_step", 1200L }, { "state_dict", sd } });
        WriteCkpt(original, DoubleWrappedCkpt, sd => new FixtureDict { { "state_dict", new FixtureDict { { "state_dict", sd } } } });
    }

    public string SingleFile { get; } = TestPaths.GoldenFile("tiny_sd1.safetensors");
    public string Diffusers => _dir.File("tiny_sd1-diffusers");
    public string LegacyTextEncoder => _dir.File("tiny_sd1-legacy-te.safetensors");
    public string StateDictCkpt => _dir.File("tiny_sd1.ckpt");
    public string DoubleWrappedCkpt => _dir.File("tiny_sd1-double.ckpt");

    public string Path(string source) => source switch
    {
        "diffusers" => Diffusers,
        "legacy-te" => LegacyTextEncoder,
        "state_dict" => StateDictCkpt,
        "double-wrapped" => DoubleWrappedCkpt,
        _ => SingleFile,
    };

    public string File(string name) => _dir.File(name);

    /// <summary>torch.save of the checkpoint's tensors (one storage each) inside the tree <paramref name="wrap"/> builds.</summary>
    private static void WriteCkpt(SafetensorsFile source, string path, Func<FixtureDict, FixtureDict> wrap)
    {
        var storages = new Dictionary<string, FixtureStorage>();
        var stateDict = new FixtureDict(ordered: true);
        foreach (var t in source.Tensors)
        {
            var bytes = new byte[t.ByteLength];
            source.ReadTensorData(t, bytes);
            string key = storages.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
            storages[key] = t.DType switch
            {
                TensorDType.F32 => new FixtureStorage("FloatStorage", 4, bytes),
                TensorDType.I64 => new FixtureStorage("LongStorage", 8, bytes),
                _ => throw new InvalidOperationException($"{t.Name}: {t.DType} not expected in the golden checkpoint"),
            };
            var strides = new long[t.Rank];
            for (int i = t.Rank - 1, s = 1; i >= 0; s *= (int)t.Shape[i], i--) strides[i] = s;
            stateDict.Add(t.Name, new FixtureTensor(key, 0, t.Shape, strides));
        }
        TorchFixtureWriter.WriteZip(path, wrap(stateDict), storages);
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// Every way of saving a checkpoint generates, bakes and merges exactly like the single file: latents bit for bit,
/// output tensors byte for byte.
/// </summary>
public sealed class CheckpointSourcesTests(CheckpointSourcesFixture sources) : IClassFixture<CheckpointSourcesFixture>
{
    /// <summary>What a diffusers folder does not hold: the DDPM schedule buffers and the CLIP position ids.</summary>
    private static readonly string[] NotInAFolder =
    [
        "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
        "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
        "cond_stage_model.transformer.text_model.embeddings.position_ids",
    ];

    private byte[] GenerateLatents(string model, string name, string config = "tiny_sd1.config.json")
    {
        string latents = sources.File(name + "-latents.safetensors");
        var r = Run("generate", "--model", model, "--config", TestPaths.GoldenFile(config), "--tokenizer", TestPaths.GoldenFile("clip"),
            "--prompt", "a photograph of an astronaut riding a horse", "--negative", "blurry", "--steps", "3", "--sampler", "DPM++ 2M",
            "--schedule", "karras", "--seed", "42", "--width", "16", "--height", "16", "--out", sources.File(name + ".png"), "--save-latents", latents);
        Assert.True(r.Code == 0, r.Stderr);
        using var file = SafetensorsFile.Open(latents);
        var bytes = new byte[file.Tensors[0].ByteLength];
        file.ReadTensorData(file.Tensors[0], bytes);
        return bytes;
    }

    private static Dictionary<string, (TensorInfo Info, byte[] Bytes)> Tensors(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Tensors.ToDictionary(t => t.Name, t =>
        {
            var bytes = new byte[t.ByteLength];
            file.ReadTensorData(t, bytes);
            return (t, bytes);
        });
    }

    /// <summary>The output made from the folder has every tensor of the one made from the single file, equal, and nothing else is missing.</summary>
    private static void AssertSameTensors(string fromSingleFile, string fromFolder)
    {
        var expected = Tensors(fromSingleFile);
        var actual = Tensors(fromFolder);
        Assert.Equal(NotInAFolder.Order(StringComparer.Ordinal), expected.Keys.Except(actual.Keys).Order(StringComparer.Ordinal));
        Assert.Empty(actual.Keys.Except(expected.Keys));
        foreach (var (name, (info, bytes)) in actual)
        {
            Assert.Equal(expected[name].Info.Shape, info.Shape);
            Assert.Equal(expected[name].Info.DType, info.DType);
            Assert.True(expected[name].Bytes.AsSpan().SequenceEqual(bytes), $"{name} differs");
        }
    }

    [Theory]
    [InlineData("diffusers")]
    [InlineData("legacy-te")]
    [InlineData("state_dict")]
    [InlineData("double-wrapped")]
    public void EverySourceGeneratesTheSingleFilesLatentsBitForBit(string source)
    {
        var expected = GenerateLatents(sources.SingleFile, "single-" + source);
        var actual = GenerateLatents(sources.Path(source), source);
        Assert.Equal(expected, actual);
    }

    /// <summary>
    /// SD 2.x and SDXL folders as diffusers' converters lay them out (OpenCLIP q/k/v split, projection transposed; no
    /// logit_scale, and no projection for SD 2.x) generate what their single files generate.
    /// </summary>
    [Theory]
    [InlineData("tiny_sd2v", true)]
    [InlineData("tiny_sdxl", false)]
    public void Sd2AndSdxlDiffusersFoldersGenerateTheSingleFilesLatentsBitForBit(string model, bool openClipTextEncoder)
    {
        string single = TestPaths.GoldenFile(model + ".safetensors"), folder = sources.File(model + "-diffusers");
        using (var file = SafetensorsFile.Open(single)) DiffusersFolderWriter.Write(file, folder, openClipTextEncoder);
        var expected = GenerateLatents(single, model + "-single", model + ".config.json");
        var actual = GenerateLatents(folder, model + "-folder", model + ".config.json");
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData("diffusers", ModelFormat.Diffusers)]
    [InlineData("legacy-te", ModelFormat.Safetensors)]
    [InlineData("state_dict", ModelFormat.TorchZip)]
    public void InspectStillCallsEachAnSd1Checkpoint(string source, ModelFormat format)
    {
        using var file = ModelFileReader.Open(sources.Path(source));
        Assert.Equal(format, file.Format);
        var verdict = ModelClassifier.Classify(file);
        Assert.Equal(ModelKind.Checkpoint, verdict.Kind);
        Assert.Equal(BaseFamily.SD1, verdict.Base);
    }

    [Fact]
    public void BakeFromTheDiffusersFolderWritesTheSingleFilesTensors()
    {
        string lora = sources.File("bake-lora.safetensors");
        WriteLora(lora);
        string fromFile = sources.File("baked-file.safetensors"), fromFolder = sources.File("baked-folder.safetensors");
        var a = Run("bake", "--model", sources.SingleFile, "--lora", lora + ":0.8:0.6", "--out", fromFile);
        Assert.True(a.Code == 0, a.Stderr);
        var b = Run("bake", "--model", sources.Diffusers, "--lora", lora + ":0.8:0.6", "--out", fromFolder);
        Assert.True(b.Code == 0, b.Stderr);
        Assert.Contains("2 patched", b.Stdout);
        AssertSameTensors(fromFile, fromFolder);
    }

    [Fact]
    public void MergeFromTheDiffusersFolderWritesTheSingleFilesTensors()
    {
        // B differs from A (a LoRA baked in), so the merge computes something.
        string lora = sources.File("merge-lora.safetensors"), other = sources.File("merge-b.safetensors");
        WriteLora(lora);
        Assert.Equal(0, Run("bake", "--model", sources.SingleFile, "--lora", lora + ":1", "--out", other).Code);
        string fromFile = sources.File("merged-file.safetensors"), fromFolder = sources.File("merged-folder.safetensors");
        var a = Run("merge", "--model-a", sources.SingleFile, "--model-b", other, "--multiplier", "0.3", "--out", fromFile);
        Assert.True(a.Code == 0, a.Stderr);
        var b = Run("merge", "--model-a", sources.Diffusers, "--model-b", other, "--multiplier", "0.3", "--out", fromFolder);
        Assert.True(b.Code == 0, b.Stderr);
        AssertSameTensors(fromFile, fromFolder);
        const string patched = "model.diffusion_model.input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight";
        Assert.False(Tensors(fromFolder)[patched].Bytes.AsSpan().SequenceEqual(Tensors(sources.SingleFile)[patched].Bytes));
    }

    [Fact]
    public void AFolderThatIsNoModelIsOneLineAndUsageExit()
    {
        string empty = Directory.CreateDirectory(sources.File("not-a-model")).FullName;
        var r = Run("generate", "--model", empty, "--prompt", "x", "--out", sources.File("none.png"));
        Assert.Equal(2, r.Code);
        Assert.Contains("not-a-model: no such file or diffusers folder", r.Stderr);
        Assert.False(System.IO.File.Exists(sources.File("none.png")));
    }

    [Fact]
    public void AnInpaintingUNetWithoutAMaskIsRefusedWithOneLine()
    {
        // The golden SD1 inpainting checkpoint (9-channel first convolution) generates only with an init image and a mask.
        string inpaint = TestPaths.GoldenFile("ext/tiny_sd1_inpaint.safetensors");
        var r = Run("generate", "--model", inpaint, "--config", TestPaths.GoldenFile("ext/tiny_sd1_inpaint.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"), "--prompt", "x", "--width", "16", "--height", "16", "--out", sources.File("inpaint.png"));
        Assert.Equal(2, r.Code);
        Assert.Contains("an inpainting checkpoint generates from an init image and a mask", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }

    /// <summary>A kohya LoRA on one U-Net cross-attention key and one text-encoder projection of the tiny model.</summary>
    private static void WriteLora(string path)
    {
        const string unet = "lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k", te = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
        static TensorToWrite F32(string name, long[] shape, float scale)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var values = Enumerable.Range(0, (int)n).Select(i => scale * MathF.Sin(i * 0.7f + 1f)).ToArray();
            return TensorToWrite.FromBytes(name, TensorDType.F32, shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
        }
        SafetensorsWriter.Write(path,
        [
            F32(unet + ".lora_down.weight", [2, 32], 0.5f), F32(unet + ".lora_up.weight", [64, 2], 0.5f), F32(unet + ".alpha", [], 1f),
            F32(te + ".lora_down.weight", [2, 32], 0.5f), F32(te + ".lora_up.weight", [32, 2], 0.5f), F32(te + ".alpha", [], 4f),
        ]);
    }
}
