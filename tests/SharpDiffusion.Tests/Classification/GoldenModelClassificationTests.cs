using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Inspection;
using Xunit.Abstractions;

namespace SharpDiffusion.Tests.Classification;

/// <summary>
/// The tiny golden checkpoints (tests/data/golden) are real safetensors files with scaled-down widths: their layout,
/// not their widths, names the family.
/// </summary>
public class GoldenModelClassificationTests
{
    private readonly ITestOutputHelper _output;

    public GoldenModelClassificationTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData("tiny_sd1.safetensors", BaseFamily.SD1, "1x1-conv proj_in")]
    [InlineData("tiny_sd2v.safetensors", BaseFamily.SD2, "OpenCLIP text tower")]
    [InlineData("tiny_sdxl.safetensors", BaseFamily.SDXL, "8 + 16")]
    public void TinyCheckpointsAreClassifiedByLayout(string file, BaseFamily family, string evidence)
    {
        using var model = SafetensorsFile.Open(TestPaths.GoldenFile(file));
        var r = ModelClassifier.Classify(model);
        foreach (var line in r.Evidence) _output.WriteLine(file + ": " + line);
        Assert.Equal(ModelKind.Checkpoint, r.Kind);
        Assert.Equal(family, r.Base);
        Assert.Equal("fp32", r.Precision);
        Assert.Equal(4, r.InputChannels);
        Assert.Equal(model.Tensors.Count, r.Tensors);
        Assert.Contains("unet", r.Components);
        Assert.Contains("vae", r.Components);
        ClassificationAssert.EvidenceMentions(r, evidence, "scaled-down");
    }
}
