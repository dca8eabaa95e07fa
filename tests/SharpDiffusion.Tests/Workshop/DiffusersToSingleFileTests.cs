using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Tests.Fixtures;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

/// <summary>
/// convert of a diffusers folder to one single-file checkpoint: the tiny SD1 checkpoint is split into a diffusers
/// folder through the key map, converted back, and must come back tensor for tensor, byte for byte.
/// </summary>
public sealed class DiffusersToSingleFileTests
{
    private static readonly string Tiny = TestPaths.GoldenFile("tiny_sd1.safetensors");

    /// <summary>Writes <paramref name="source"/> as a diffusers folder; returns the single-file keys that have a diffusers twin.</summary>
    private static HashSet<string> WriteDiffusersFolder(SafetensorsFile source, string folder) =>
        DiffusersFolderWriter.Write(source, folder, openClipTextEncoder: false);

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
        TensorAssert.EachEqualsTheOriginal(original, converted);
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
