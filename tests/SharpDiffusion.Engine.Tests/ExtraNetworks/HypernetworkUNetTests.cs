using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Hypernetworks;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Formats;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

public sealed class HypernetworkUNetTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("tiny_relu", "1.0")]
    [InlineData("tiny_relu", "0.6")]
    [InlineData("tiny_swish_ln", "1.0")]
    [InlineData("tiny_swish_ln", "0.6")]
    public void UNetOutputWithTheHookOnEveryAttentionMatchesA1111(string hn, string strength)
    {
        using var model = TinyModel.Load();
        using var golden = GoldenTensors.Open("a1111/hypernetwork.safetensors");
        using var file = ModelFileReader.Open(TestPaths.GoldenFile($"a1111/hypernetworks/{hn}.pt"));
        using var network = Hypernetwork.Load(file);
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var x = golden.Get("unet.x");
        var t = golden.Get("unet.t");
        var context = golden.Get("unet.context");

        model.UNet.ContextHook = new HypernetworkStack([(network, double.Parse(strength, System.Globalization.CultureInfo.InvariantCulture))]);
        var hooked = model.UNet.Forward(x, t, context);
        model.UNet.ContextHook = null;
        var plain = model.UNet.Forward(x, t, context);

        double diff = TensorAssert.MaxAbsDiff(golden.Get($"{hn}.s{strength}.unet_out"), hooked);
        output.WriteLine($"{hn} s{strength}: max abs diff {diff:E2}");
        TensorAssert.MaxAbs(golden.Get($"{hn}.s{strength}.unet_out"), hooked, 1e-4, $"{hn} s{strength} unet_out");
        TensorAssert.MaxAbs(golden.Get("none.unet_out"), plain, 1e-4, "none.unet_out after removing the hook");
        Assert.True(TensorAssert.MaxAbsDiff(plain, hooked) > 1e-2);
    }

    [Fact]
    public void HypernetTagInAJobChangesOnlyThatJobAndIsNamedInTheInfotext()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("hypernetworks/sub"));
        File.Copy(TestPaths.GoldenFile("a1111/hypernetworks/tiny_relu.pt"), dir.File("hypernetworks/sub/tiny_relu.pt"));
        using var model = TinyModel.Load();
        using var session = new ExtraNetworkSession(model, new ModelsFolder(dir.Path));

        using var first = session.Generate(TinyModel.Request("a cat"));
        using var hooked = session.Generate(TinyModel.Request("a cat<hypernet:tiny_relu:0.6>"));
        using var third = session.Generate(TinyModel.Request("a cat<hypernet:nope>"));

        Assert.NotEqual(first.Result.Images[0], hooked.Result.Images[0]);
        Assert.Equal(first.Result.Images[0], third.Result.Images[0]);
        Assert.Null(model.UNet.ContextHook);
        Assert.Contains(new KeyValuePair<string, string>("Hypernet", "tiny_relu"), hooked.InfotextFields);
        Assert.Contains(new KeyValuePair<string, string>("Hypernet strength", "0.6"), hooked.InfotextFields);
        Assert.Contains(new KeyValuePair<string, string>("Hypernet hash", "8341b81cc6"), hooked.InfotextFields);
        Assert.Empty(hooked.Warnings);
        Assert.Contains("hypernet nope: no such network", Assert.Single(third.Warnings));
        Assert.DoesNotContain(third.InfotextFields, f => f.Key == "Hypernet");
    }
}
