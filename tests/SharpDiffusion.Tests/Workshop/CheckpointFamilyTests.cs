using SharpDiffusion.Architectures;
using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;
using SharpDiffusion.Tests.Fixtures;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

/// <summary>The workshop's family check follows the classifier: same names for the tiny models, and parts without a text encoder are recognised too.</summary>
public sealed class CheckpointFamilyTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("tiny_sd1.safetensors", "SD1")]
    [InlineData("tiny_sd2v.safetensors", "SD2")]
    [InlineData("tiny_sdxl.safetensors", "SDXL")]
    public void Tiny_checkpoints_get_their_family(string model, string family)
    {
        using var file = ModelFileReader.Open(TestPaths.GoldenFile(model));
        Assert.Equal(family, ModelClassifier.Classify(file).Base?.DisplayName());
    }

    [Fact]
    public void A_file_of_tensors_in_no_known_layout_has_no_family()
    {
        string path = CheckpointFixture.Sd1().Where(t => t.Name is "betas" or "alphas_cumprod").WriteSafetensors(_dir.File("buffers.safetensors"));
        using var file = ModelFileReader.Open(path);
        Assert.Null(ModelClassifier.Classify(file).Base);
    }

    [Fact]
    public void An_sd1_unet_and_vae_without_text_encoder_is_refused_against_sdxl()
    {
        // The key-prefix rule this replaced looked at the text encoder only and let this pair through to a shape error.
        // Full-size SD1.5 names and shapes (sparse, nothing read): the U-Net's 768-wide cross-attention says SD1.
        string a = _dir.File("no-text.safetensors");
        SparseSafetensors.Create(a, Conversion.ReferenceInventory.SingleFile
            .Where(t => !t.Name.StartsWith("cond_stage_model.", StringComparison.Ordinal)).Select(t => (t.Name, t.DType, t.Shape)));
        string output = _dir.File("out.safetensors");
        var e = Assert.Throws<WorkshopException>(() => ModelMerger.Merge(new MergeOptions
        {
            ModelA = a, ModelB = TestPaths.GoldenFile("tiny_sdxl.safetensors"), Multiplier = 0.5, Output = output,
        }));
        Assert.Contains("is SD1", e.Message);
        Assert.Contains("is SDXL", e.Message);
        Assert.Contains("different families", e.Message);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Sd1_against_sd2_is_refused_by_family()
    {
        string output = _dir.File("out.safetensors");
        var e = Assert.Throws<WorkshopException>(() => ModelMerger.Merge(new MergeOptions
        {
            ModelA = TestPaths.GoldenFile("tiny_sd1.safetensors"), ModelB = TestPaths.GoldenFile("tiny_sd2v.safetensors"),
            Multiplier = 0.5, Output = output,
        }));
        Assert.Contains("is SD2", e.Message);
        Assert.Contains("different families", e.Message);
    }
}
