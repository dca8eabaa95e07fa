using SharpDiffusion.Engine.Hypernetworks;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Hypernetworks;

/// <summary>A1111's defaults for older files, old parameter names, dropout indices, activation table, and bad files.</summary>
public class HypernetworkLoadingTests
{
    private static Tensor Random(long[] shape, int seed) => randn(shape, generator: new Generator((ulong)seed));

    [Fact]
    public void OldFilesUseLinear1Linear2AndTheDefaultStructure()
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var w1 = Random(new long[] { 8, 4 }, 1);
        var b1 = Random(new long[] { 8 }, 2);
        var w2 = Random(new long[] { 4, 8 }, 3);
        var b2 = Random(new long[] { 4 }, 4);
        var tensors = new List<(string, Tensor)>();
        foreach (var side in new[] { "0", "1" })
            tensors.AddRange(new[] { ($"4.{side}.linear1.weight", w1), ($"4.{side}.linear1.bias", b1), ($"4.{side}.linear2.weight", w2), ($"4.{side}.linear2.bias", b2) });
        using var file = new InMemoryModelFile("/hn/anime_3.pt", tensors);
        using var network = Hypernetwork.Load(file);

        Assert.Equal("anime_3", network.Name); // no stored name: the file name
        Assert.Equal(new[] { 1.0, 2.0, 1.0 }, network.Structure.LayerStructure);
        Assert.Null(network.Structure.ActivationFunc);
        Assert.True(network.Structure.ActivateOutput);
        Assert.False(network.Structure.IsLayerNorm);
        Assert.Equal(new[] { "linear.0.weight", "linear.0.bias", "linear.1.weight", "linear.1.bias" }, network.ForWidth(4)!.Value.K.state_dict().Keys);

        var x = Random(new long[] { 1, 3, 4 }, 5);
        var expected = x + (x.matmul(w1.t()) + b1).matmul(w2.t()).add(b2) * 0.5;
        var (k, v) = HypernetworkStack.ApplyToContext(new[] { (network, 0.5) }, x);
        Assert.True((k - expected).abs().max().item<float>() < 1e-5);
        Assert.True((v - expected).abs().max().item<float>() < 1e-5);
    }

    [Theory]
    [InlineData(false, new[] { "linear.0", "linear.3", "linear.5" })]
    [InlineData(true, new[] { "linear.0", "linear.3", "linear.6" })]
    public void DropoutLayersOccupySequentialIndices(bool lastLayerDropout, string[] linearPrefixes)
    {
        var layers = new[] { 1.0, 2.0, 2.0, 1.0 };
        var structure = new HypernetworkStructure
        {
            LayerStructure = layers,
            ActivationFunc = "relu",
            ActivateOutput = false,
            DropoutStructure = HypernetworkStructure.ParseDropoutStructure(layers, useDropout: true, lastLayerDropout),
        };
        Assert.Equal(lastLayerDropout ? new[] { 0, 0.3, 0.3, 0 } : new[] { 0, 0.3, 0, 0 }, structure.DropoutStructure);
        using var module = new HypernetworkModule(8, structure);
        var keys = module.state_dict().Keys.ToArray();
        Assert.Equal(linearPrefixes.SelectMany(p => new[] { p + ".weight", p + ".bias" }), keys);
    }

    [Fact]
    public void ActivateOutputAndLayerNormAfterTheLastLinear()
    {
        var structure = new HypernetworkStructure { ActivationFunc = "prelu", IsLayerNorm = true, ActivateOutput = true };
        Assert.Equal(new[] { 0.0, 0.0, 0.0 }, structure.DropoutStructure);
        Assert.Equal(new double[5], (structure with { LayerStructure = new[] { 1.0, 2.0, 4.0, 2.0, 1.0 } }).DropoutStructure);
        using var module = new HypernetworkModule(4, structure);
        // Linear, PReLU (has a weight), LayerNorm, Linear, PReLU, LayerNorm.
        Assert.Equal(new[]
        {
            "linear.0.weight", "linear.0.bias", "linear.1.weight", "linear.2.weight", "linear.2.bias",
            "linear.3.weight", "linear.3.bias", "linear.4.weight", "linear.5.weight", "linear.5.bias",
        }, module.state_dict().Keys);
    }

    [Fact]
    public void SwishIsHardswishAsInA1111()
    {
        using var x = tensor(new float[] { -4, -1, 0, 1, 4 });
        using var swish = HypernetworkActivation.Create("swish");
        using var y = swish.forward(x);
        Assert.Equal(new[] { 0f, -1f / 3, 0f, 2f / 3, 4f }, y.data<float>().ToArray(), new FloatTolerance(1e-6f));
        using var silu = HypernetworkActivation.Create("silu");
        Assert.Equal(0.7310586f, silu.forward(x)[3].item<float>(), 1e-6f);
        using var softsign = HypernetworkActivation.Create("softsign");
        Assert.Equal(-0.8f, softsign.forward(x)[0].item<float>(), 1e-6f);
        using var leaky = HypernetworkActivation.Create("leakyrelu");
        Assert.Equal(-0.04f, leaky.forward(x)[0].item<float>(), 1e-7f);
        Assert.True(HypernetworkActivation.IsSupported("mish"));
        Assert.True(HypernetworkActivation.IsSupported(null));
        Assert.False(HypernetworkActivation.IsSupported("glu"));
    }

    private static InMemoryModelFile TinyFile(string path, Dictionary<string, string> metadata, params (string, Tensor)[] extra)
    {
        var tensors = new List<(string, Tensor)>();
        foreach (var side in new[] { "0", "1" })
        {
            tensors.Add(($"4.{side}.linear.0.weight", zeros(8, 4)));
            tensors.Add(($"4.{side}.linear.0.bias", zeros(8)));
            tensors.Add(($"4.{side}.linear.2.weight", zeros(4, 8)));
            tensors.Add(($"4.{side}.linear.2.bias", zeros(4)));
        }
        tensors.AddRange(extra);
        return new InMemoryModelFile(path, tensors, metadata);
    }

    [Fact]
    public void BadFilesAreRefusedWithTheFileAndTheProblem()
    {
        using (var glu = TinyFile("/hn/glu.pt", new() { ["activation_func"] = "glu" }))
            Assert.Equal("/hn/glu.pt: hypernetwork uses an unsupported activation function: glu",
                Assert.Throws<InvalidModelFileException>(() => Hypernetwork.Load(glu)).Message);

        using (var structure = TinyFile("/hn/s.pt", new() { ["layer_structure"] = "[2,1]" }))
            Assert.Equal("/hn/s.pt: hypernetwork layer_structure [2, 1] must start and end with 1",
                Assert.Throws<InvalidModelFileException>(() => Hypernetwork.Load(structure)).Message);

        // [1, 2, 1] with ReLU needs linear.0 and linear.2; a default (no activation) structure expects linear.1.
        using (var wrongIndex = TinyFile("/hn/w.pt", new()))
            Assert.StartsWith("/hn/w.pt: hypernetwork weights do not match its layer structure: missing 4.0.linear.1.weight",
                Assert.Throws<InvalidModelFileException>(() => Hypernetwork.Load(wrongIndex)).Message);

        using (var lora = TinyFile("/hn/lora.safetensors", new() { ["activation_func"] = "relu" }, ("lora_unet_x.alpha", zeros(1))))
            Assert.Equal("/hn/lora.safetensors: not a hypernetwork: tensor(s) lora_unet_x.alpha are not <width>.<0|1>.<layer> weights",
                Assert.Throws<InvalidModelFileException>(() => Hypernetwork.Load(lora)).Message);

        using (var extra = TinyFile("/hn/e.pt", new() { ["activation_func"] = "relu" }, ("4.0.linear.9.weight", zeros(2))))
            Assert.Equal("/hn/e.pt: hypernetwork has tensors its layer structure does not use: 4.0.linear.9.weight",
                Assert.Throws<InvalidModelFileException>(() => Hypernetwork.Load(extra)).Message);

        using (var flag = TinyFile("/hn/f.pt", new() { ["activation_func"] = "relu", ["is_layer_norm"] = "maybe" }))
            Assert.Equal("/hn/f.pt: hypernetwork is_layer_norm is \"maybe\", not true or false",
                Assert.Throws<InvalidModelFileException>(() => Hypernetwork.Load(flag)).Message);

        using var ok = TinyFile("/hn/ok.pt", new() { ["activation_func"] = "relu", ["name"] = "stored" });
        using var network = Hypernetwork.Load(ok);
        Assert.Equal("stored", network.Name);
    }

    [Fact]
    public void AHypernetworkForWidthsTheModelLacksIsReportedNotFatal()
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        using var file = TinyFile("/hn/sd1style.pt", new() { ["activation_func"] = "relu", ["name"] = "sd1style" });
        using var foreign = Hypernetwork.Load(file);
        using var golden = HypernetworkGoldenTests.Load("tiny_relu"); // widths 32 and 64
        var stack = new HypernetworkStack(new[] { (foreign, 1.0), (golden, 1.0) });

        var warnings = stack.Check(new[] { 64, 32, 64, 128 });
        Assert.Equal(new[]
        {
            "hypernetwork sd1style has layers for widths 4, this model's attention widths are 32, 64, 128: it has no effect on this model",
        }, warnings);
        Assert.Equal(new[]
        {
            "hypernetwork tiny_relu has layers for widths 32, 64, this model's attention widths are 32, 128: the layers for 64 are not used",
        }, new HypernetworkStack(new[] { (golden, 1.0) }).Check(new[] { 32, 128 }));

        // Applying it to a context of another width leaves the context as it is (A1111 skips it silently).
        var context = randn(1, 5, 128);
        var (k, v) = stack.Transform(context);
        Assert.True(k.equal(context).all().item<bool>() && v.equal(context).all().item<bool>());
    }

    private sealed class FloatTolerance(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= tolerance;
        public int GetHashCode(float value) => 0;
    }
}
