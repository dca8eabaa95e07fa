using SharpDiffusion.Conversion;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

/// <summary>
/// convert of a diffusers folder to one single-file checkpoint: the tiny SD1 checkpoint is split into a diffusers
/// folder through the key map, converted back, and must come back tensor for tensor, byte for byte.
/// </summary>
public sealed class DiffusersToSingleFileTests
{
    private static readonly string Tiny = TestPaths.GoldenFile("tiny_sd1.safetensors");

    private static readonly Dictionary<string, (string File, string ClassName)> Components = new()
    {
        ["unet"] = ("diffusion_pytorch_model.safetensors", "UNet2DConditionModel"),
        ["vae"] = ("diffusion_pytorch_model.safetensors", "AutoencoderKL"),
        ["text_encoder"] = ("model.safetensors", "CLIPTextModel"),
    };

    /// <summary>Writes <paramref name="source"/> as a diffusers folder; returns the single-file keys that have a diffusers twin.</summary>
    private static HashSet<string> WriteDiffusersFolder(SafetensorsFile source, string folder)
    {
        var map = CheckpointKeyMap.FromLdmKeys(source.Tensors.Select(t => t.Name));
        var byComponent = new Dictionary<string, List<TensorToWrite>>();
        var mapped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in source.Tensors)
        {
            var parts = map.ToDiffusers(t.Name);
            if (parts.Count == 0) continue; // DDPM schedule buffers: diffusers keeps them in scheduler config
            var c = Assert.Single(parts);
            var bytes = new byte[t.ByteLength];
            source.ReadTensorData(t, bytes);
            if (!byComponent.TryGetValue(c.Component, out var list)) byComponent[c.Component] = list = new();
            list.Add(TensorToWrite.FromBytes(c.DiffusersKey, t.DType, c.DiffusersShapeFromLdm(t.Shape)!, bytes));
            mapped.Add(t.Name);
        }
        foreach (var (component, tensors) in byComponent)
        {
            var dir = Directory.CreateDirectory(Path.Combine(folder, component)).FullName;
            var (file, className) = Components[component];
            SafetensorsWriter.Write(Path.Combine(dir, file), tensors);
            File.WriteAllText(Path.Combine(dir, "config.json"), $"{{\"_class_name\": \"{className}\"}}");
        }
        File.WriteAllText(Path.Combine(folder, "model_index.json"),
            "{\"_class_name\": \"StableDiffusionPipeline\", \"unet\": [\"diffusers\", \"UNet2DConditionModel\"], "
            + "\"vae\": [\"diffusers\", \"AutoencoderKL\"], \"text_encoder\": [\"transformers\", \"CLIPTextModel\"]}");
        return mapped;
    }

    [Fact]
    public void DiffusersFolderBecomesTheSingleFileCheckpointBitForBit()
    {
        using var dir = new TempDir();
        var folder = Directory.CreateDirectory(dir.File("tiny-diffusers")).FullName;
        using var original = SafetensorsFile.Open(Tiny);
        var mapped = WriteDiffusersFolder(original, folder);
        Assert.True(mapped.Count > 350, $"only {mapped.Count} keys mapped");

        var output = dir.File("tiny-single.safetensors");
        var result = CheckpointConverter.Convert(new ConvertOptions { Input = folder, Output = output });
        Assert.Equal(mapped.Count, result.Tensors);

        using var converted = SafetensorsFile.Open(output);
        Assert.Equal(mapped.Order(StringComparer.Ordinal), converted.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        var originals = original.Tensors.ToDictionary(t => t.Name);
        foreach (var t in converted.Tensors)
        {
            var o = originals[t.Name];
            Assert.Equal(o.Shape, t.Shape);
            Assert.Equal(o.DType, t.DType);
            var a = new byte[o.ByteLength];
            var b = new byte[t.ByteLength];
            original.ReadTensorData(o, a);
            converted.ReadTensorData(t, b);
            Assert.True(a.AsSpan().SequenceEqual(b), $"{t.Name} differs");
        }
        // The VAE attention weights are Linear in diffusers and 1x1 convs in the single file.
        var q = converted.Tensors.Single(t => t.Name == "first_stage_model.decoder.mid.attn_1.q.weight");
        Assert.Equal(4, q.Rank);
        Assert.Equal("diffusers", System.Text.Json.JsonDocument.Parse(converted.Metadata[CheckpointConverter.MetadataKey]).RootElement.GetProperty("source_format").GetString());
    }

    [Fact]
    public void AnUnknownTensorInTheFolderIsAnErrorNamingIt()
    {
        using var dir = new TempDir();
        var folder = Directory.CreateDirectory(dir.File("odd")).FullName;
        using (var original = SafetensorsFile.Open(Tiny)) WriteDiffusersFolder(original, folder);
        var unetFile = Path.Combine(folder, "unet", "diffusion_pytorch_model.safetensors");
        using (var unet = SafetensorsFile.Open(unetFile))
        {
            var tensors = unet.Tensors.Select(t => TensorToWrite.FromModelFile(unet, t)).ToList();
            tensors.Add(TensorToWrite.FromBytes("my_adapter.weight", TensorDType.F32, new long[] { 2 }, new byte[8]));
            SafetensorsWriter.Write(unetFile + ".new", tensors);
        }
        File.Move(unetFile + ".new", unetFile, overwrite: true);
        var output = dir.File("out.safetensors");
        var e = Assert.Throws<WorkshopException>(() => CheckpointConverter.Convert(new ConvertOptions { Input = folder, Output = output }));
        Assert.Contains("unet/my_adapter.weight", e.Message);
        Assert.False(File.Exists(output));
    }
}
