using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Weights;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Models;

/// <summary>
/// The UNet reproduces the reference outputs of the tiny SD1, SD2-v and SDXL checkpoints (fp32, max abs ≤ 1e-4),
/// built both from the config json and from weight detection (with the config's head layout), loaded strictly.
/// </summary>
public class GoldenUNetTests
{
    private const string Prefix = "model.diffusion_model.";

    public static TheoryData<string, string> Cases() => new()
    {
        { "tiny_sd1", "case0" }, { "tiny_sd1", "case1" },
        { "tiny_sd2v", "case0" }, { "tiny_sd2v", "case1" },
        { "tiny_sdxl", "case0" }, { "tiny_sdxl", "case1" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void FromConfigMatchesGolden(string model, string unetCase)
    {
        using var golden = new GoldenFiles(model);
        var config = UNetConfig.FromLdmConfig(LdmConfigFile.Load(golden.ConfigPath));
        AssertMatches(golden, config, unetCase);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void FromDetectedWeightsMatchesGolden(string model, string unetCase)
    {
        using var golden = new GoldenFiles(model);
        var fromConfig = UNetConfig.FromLdmConfig(LdmConfigFile.Load(golden.ConfigPath));
        var detected = UNetConfig.DetectFromWeights(golden.Checkpoint, Prefix, fromConfig.NumHeads, fromConfig.NumHeadChannels);
        Assert.True(detected.SameArchitecture(fromConfig), $"detected {detected} vs config {fromConfig}");
        AssertMatches(golden, detected, unetCase);
    }

    [Fact]
    public void ConfigsDescribeTheThreeFamilies()
    {
        UNetConfig Load(string name) => UNetConfig.FromLdmConfig(LdmConfigFile.Load(TestPaths.GoldenFile(name + ".config.json")));
        var sd1 = Load("tiny_sd1");
        Assert.Equal(new[] { 0, 1 }, sd1.TransformerDepth);
        Assert.Equal((4, 16), sd1.HeadsFor(64));
        Assert.False(sd1.UseLinearInTransformer);
        var sd2 = Load("tiny_sd2v");
        Assert.Equal(new[] { 1, 1 }, sd2.TransformerDepth);
        Assert.Equal((4, 8), sd2.HeadsFor(32));
        Assert.True(sd2.UseLinearInTransformer);
        var xl = Load("tiny_sdxl");
        Assert.Equal(new[] { 0, 1, 2 }, xl.TransformerDepth);
        Assert.Equal(2, xl.TransformerDepthMiddle);
        Assert.Equal(120, xl.AdmInChannels);
        Assert.Equal(24, xl.ContextDim);
    }

    [Fact]
    public void MissingVectorConditioningIsRejected()
    {
        using var golden = new GoldenFiles("tiny_sdxl");
        using var unet = new UNetModel(UNetConfig.FromLdmConfig(LdmConfigFile.Load(golden.ConfigPath)));
        using var x = golden.Golden("unet.case0.x");
        using var t = golden.Golden("unet.case0.t");
        using var c = golden.Golden("unet.case0.context");
        Assert.Throws<ArgumentException>(() => unet.Forward(x, t, c));
    }

    private static void AssertMatches(GoldenFiles golden, UNetConfig config, string unetCase)
    {
        using var unet = new UNetModel(config);
        StrictLoader.Load(unet, golden.Checkpoint, Prefix);
        using var scope = NewDisposeScope();
        var x = golden.Golden($"unet.{unetCase}.x");
        var t = golden.Golden($"unet.{unetCase}.t");
        var context = golden.Golden($"unet.{unetCase}.context");
        var y = golden.HasGolden($"unet.{unetCase}.y") ? golden.Golden($"unet.{unetCase}.y") : null;
        var expected = golden.Golden($"unet.{unetCase}.out");
        using var inference = inference_mode();
        var actual = unet.Forward(x, t, context, y);
        var diff = GoldenFiles.MaxAbsDiff(actual, expected);
        Assert.True(diff <= 1e-4, $"{golden.Name} {unetCase}: max abs diff {diff:E3}");
    }
}
