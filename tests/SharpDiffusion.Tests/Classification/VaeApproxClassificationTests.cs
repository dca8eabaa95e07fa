using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;

namespace SharpDiffusion.Tests.Classification;

/// <summary>TAESD files (A1111's models/VAE-approx) are their own kind, with the families their latent channels serve.</summary>
public class VaeApproxClassificationTests
{
    [Theory]
    [InlineData("taesd/taesd_decoder.pth", "taesd decoder", "19.weight [3, 64, 3, 3]")]
    [InlineData("taesd/taesd_encoder.safetensors", "taesd encoder", "14.weight [4, 64, 3, 3]")]
    public void Taesd_files_are_vae_approx_for_every_four_channel_family(string file, string variant, string lastConv)
    {
        using var model = ModelFileReader.Open(TestPaths.GoldenFile(file));
        var r = ModelClassifier.Classify(model);
        Assert.Equal(ModelKind.VaeApprox, r.Kind);
        Assert.Equal("vae-approx", r.Kind.WireName());
        Assert.Equal(variant, r.Variant);
        Assert.Null(r.Base);
        Assert.Equal(new[] { BaseFamily.SD1, BaseFamily.SD2, BaseFamily.SDXL, BaseFamily.SDXLRefiner }, r.CompatibleBases);
        ClassificationAssert.EvidenceMentions(r, lastConv, "TAESD residual block");
    }

    [Fact]
    public void An_upscaler_and_a_checkpoint_are_not_taken_for_taesd()
    {
        using var rrdb = ModelFileReader.Open(TestPaths.GoldenFile("ext/tiny_rrdb_x4_old.pth"));
        Assert.Equal(ModelKind.Upscaler, ModelClassifier.Classify(rrdb).Kind);
        using var sd1 = ModelFileReader.Open(TestPaths.GoldenFile("tiny_sd1.safetensors"));
        Assert.Equal(ModelKind.Checkpoint, ModelClassifier.Classify(sd1).Kind);
    }
}
