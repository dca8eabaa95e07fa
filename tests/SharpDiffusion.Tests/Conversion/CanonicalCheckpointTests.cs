using SharpDiffusion.Conversion;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Tests.Fixtures;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Conversion;

/// <summary>
/// The canonical view: diffusers folders of every family, old CLIP names and wrapped trees come out in the single-file
/// names with the single file's bytes; files already in that layout pass through untouched.
/// </summary>
public sealed class CanonicalCheckpointTests
{
    private static HashSet<string> WriteFolder(IModelFile source, string folder, bool openClipTextEncoder) =>
        DiffusersFolderWriter.Write(source, folder, openClipTextEncoder);

    private static byte[] Read(IModelFile file, TensorInfo t)
    {
        var bytes = new byte[t.ByteLength];
        file.ReadTensorData(t, bytes);
        return bytes;
    }

    [Theory]
    [InlineData("tiny_sd1.safetensors", false)]
    [InlineData("tiny_sd2v.safetensors", true)]
    [InlineData("tiny_sdxl.safetensors", false)]
    public void DiffusersFolderShowsTheSingleFileTensorsBitForBit(string model, bool openClip)
    {
        using var dir = new TempDir();
        string folder = Directory.CreateDirectory(dir.File("pipeline")).FullName;
        using var original = SafetensorsFile.Open(TestPaths.GoldenFile(model));
        var mapped = WriteFolder(original, folder, openClip);

        using var view = CheckpointFiles.Open(folder);
        Assert.Equal(ModelFormat.Diffusers, view.Format);
        Assert.Empty(view.Unmapped);
        Assert.Equal(mapped.Order(StringComparer.Ordinal), view.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        TensorAssert.EachEqualsTheOriginal(original, view);
        // What a diffusers folder cannot hold: the DDPM buffers, and OpenCLIP's logit_scale (SD2 also its unused projection).
        var absent = original.Tensors.Select(t => t.Name).Where(n => !mapped.Contains(n)).ToList();
        Assert.All(absent, n => Assert.True(n.EndsWith("logit_scale", StringComparison.Ordinal) || n == "cond_stage_model.model.text_projection"
            || !n.Contains('.', StringComparison.Ordinal), n));
    }

    [Theory]
    [InlineData("tiny_sd2v.safetensors", true)]
    [InlineData("tiny_sdxl.safetensors", false)]
    public void ConvertWritesAnSd2OrSdxlFolderAsTheSingleFile(string model, bool openClip)
    {
        using var dir = new TempDir();
        string folder = dir.File("pipeline"), output = dir.File("single.safetensors");
        using var original = SafetensorsFile.Open(TestPaths.GoldenFile(model));
        var mapped = WriteFolder(original, folder, openClip);
        var result = CheckpointConverter.Convert(new ConvertOptions { Input = folder, Output = output });
        Assert.Equal(mapped.Count, result.Tensors);
        using var converted = SafetensorsFile.Open(output);
        Assert.Equal(mapped.Count, converted.Tensors.Count);
        TensorAssert.EachEqualsTheOriginal(original, converted);
    }

    [Fact]
    public void OpenClipQkvIsStackedAndTheProjectionTransposed()
    {
        using var dir = new TempDir();
        string folder = Directory.CreateDirectory(dir.File("xl")).FullName;
        using var original = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sdxl.safetensors"));
        WriteFolder(original, folder, openClipTextEncoder: false);
        using var view = CheckpointFiles.Open(folder);
        var inProj = view.Tensors.Single(t => t.Name == "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight");
        var q = view.Inner.Tensors.Single(t => t.Name == "text_encoder_2/text_model.encoder.layers.0.self_attn.q_proj.weight");
        Assert.Equal(3 * q.Shape[0], inProj.Shape[0]);
        var projection = view.Tensors.Single(t => t.Name == "conditioner.embedders.1.model.text_projection");
        var linear = view.Inner.Tensors.Single(t => t.Name == "text_encoder_2/text_projection.weight");
        Assert.Equal([linear.Shape[1], linear.Shape[0]], projection.Shape);
        Assert.True(view.IsRenamed);
    }

    [Fact]
    public void AFolderMissingPartOfAStackedTensorIsOneLineNamingIt()
    {
        using var dir = new TempDir();
        string folder = Directory.CreateDirectory(dir.File("xl")).FullName;
        using (var original = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sdxl.safetensors"))) WriteFolder(original, folder, openClipTextEncoder: false);
        string te2 = Path.Combine(folder, "text_encoder_2", "model.safetensors");
        using (var file = SafetensorsFile.Open(te2))
        {
            var kept = file.Tensors.Where(t => t.Name != "text_model.encoder.layers.1.self_attn.k_proj.bias").Select(t => TensorToWrite.FromModelFile(file, t)).ToList();
            SafetensorsWriter.Write(te2 + ".new", kept);
        }
        File.Move(te2 + ".new", te2, overwrite: true);
        var e = Assert.Throws<InvalidModelFileException>(() => CheckpointFiles.Open(folder));
        Assert.Contains("conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_bias", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    private static TensorInfo F32(string name, params long[] shape) => new(name, TensorDType.F32, shape);

    private static byte[] Bytes(params float[] values) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    [Fact]
    public void OldClipNamesGetTextModelAndTheFirstOfTwoCopiesWins()
    {
        var file = new InMemoryModelFile(
            [
                F32("cond_stage_model.transformer.embeddings.token_embedding.weight", 2),
                F32("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", 2),
                F32("cond_stage_model.transformer.encoder.layers.0.mlp.fc1.weight", 1),
                F32("conditioner.embedders.0.transformer.final_layer_norm.bias", 1),
                F32("model.diffusion_model.out.2.bias", 1),
            ],
            data: new Dictionary<string, byte[]>
            {
                ["cond_stage_model.transformer.embeddings.token_embedding.weight"] = Bytes(1, 2),
                ["cond_stage_model.transformer.encoder.layers.0.mlp.fc1.weight"] = Bytes(3),
            });
        using var view = CanonicalCheckpoint.Wrap(file);
        Assert.Equal(
            [
                "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
                "cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight",
                "conditioner.embedders.0.transformer.text_model.final_layer_norm.bias",
                "model.diffusion_model.out.2.bias",
            ], view.Tensors.Select(t => t.Name));
        Assert.Equal(["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"], view.Dropped);
        Assert.Equal(Bytes(1, 2), Read(view, view.Tensors[0]));
        Assert.Equal(Bytes(3), Read(view, view.Tensors[1]));
        Assert.Same(file.Tensors[4], view.Tensors[3]);
    }

    [Fact]
    public void ARefinerFoldersOnlyTextEncoderIsEmbedderZero()
    {
        var folder = new InMemoryModelFile(
            [F32("text_encoder_2/text_model.final_layer_norm.weight", 4), F32("text_encoder_2/text_projection.weight", 4, 4), F32("vae/quant_conv.bias", 8)],
            format: ModelFormat.Diffusers, path: "refiner");
        using var view = CanonicalCheckpoint.Wrap(folder);
        Assert.Equal(["conditioner.embedders.0.model.ln_final.weight", "conditioner.embedders.0.model.text_projection", "first_stage_model.quant_conv.bias"],
            view.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void AWrapperPrefixGoesOnlyWhenItHidesTheCheckpointRoots()
    {
        var wrapped = new InMemoryModelFile(
            [F32("state_dict.model.diffusion_model.out.2.bias", 1), F32("state_dict.first_stage_model.quant_conv.bias", 1), F32("state_dict.betas", 1), F32("global_step", 1)],
            data: new Dictionary<string, byte[]> { ["state_dict.model.diffusion_model.out.2.bias"] = Bytes(5) });
        using (var view = CanonicalCheckpoint.Wrap(wrapped))
        {
            Assert.Equal(["model.diffusion_model.out.2.bias", "first_stage_model.quant_conv.bias", "betas", "global_step"], view.Tensors.Select(t => t.Name));
            Assert.Equal(Bytes(5), Read(view, view.Tensors[0]));
        }

        var lora = new InMemoryModelFile([F32("module.lora_unet_down.lora_down.weight", 1), F32("state_dict.emb_params", 1)]);
        using (var view = CanonicalCheckpoint.Wrap(lora))
        {
            Assert.False(view.IsRenamed);
            Assert.Same(lora.Tensors, view.Tensors);
        }
    }
}
