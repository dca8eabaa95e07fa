using System.Globalization;
using System.Text.Json;
using SharpDiffusion.Engine.Hypernetworks;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Tests.Text;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Hypernetworks;

/// <summary>
/// The two tiny A1111 hypernetworks (README §3) rebuilt from their stored state dicts and metadata, against A1111's
/// apply_hypernetworks and attention outputs (max abs ≤ 1e-4).
/// </summary>
public class HypernetworkGoldenTests(ITestOutputHelper output)
{
    private const string Golden = "a1111/hypernetwork.safetensors";
    private const string Block = "model.diffusion_model.input_blocks.3.1.transformer_blocks.0.";
    private const double Tolerance = 1e-4;

    /// <summary>
    /// The hypernetwork as the torch reader will present its .pt: tensors <c>&lt;d&gt;.&lt;0|1&gt;.&lt;key&gt;</c>, metadata the
    /// scalar entries of the pickled dict (strings raw, numbers invariant, bools true/false, None null, lists compact JSON).
    /// </summary>
    internal static InMemoryModelFile FlattenedFile(string hn)
    {
        var index = TextGolden.Json("a1111/hypernetwork.json");
        var entries = index.GetProperty("files").EnumerateArray()
            .Single(f => f.GetProperty("file").GetString() == $"hypernetworks/{hn}.pt").GetProperty("dict_entries");
        var metadata = entries.EnumerateObject().ToDictionary(p => p.Name, p => MetadataText(p.Value));

        using var golden = SafetensorsFile.Open(TestPaths.GoldenFile(Golden));
        var prefix = $"weights.{hn}.";
        var tensors = golden.Tensors.Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal)).Select(t =>
        {
            var parts = t.Name[prefix.Length..].Split('.', 3); // <d>.<k|v>.<key>
            var name = $"{parts[0]}.{(parts[1] == "k" ? 0 : 1)}.{parts[2]}";
            return (name, TensorReading.Read(golden, t));
        }).ToList();
        var file = new InMemoryModelFile(TestPaths.GoldenFile($"a1111/hypernetworks/{hn}.pt"), tensors, metadata);
        foreach (var (_, t) in tensors) t.Dispose();
        return file;
    }

    private static string MetadataText(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString()!,
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Null => "null",
        JsonValueKind.Number => v.GetRawText(),
        _ => v.GetRawText().Replace(" ", "", StringComparison.Ordinal),
    };

    internal static Hypernetwork Load(string hn)
    {
        using var file = FlattenedFile(hn);
        return Hypernetwork.Load(file);
    }

    private void AssertClose(string name, Tensor actual)
    {
        using var expected = TextGolden.Read(Golden, name);
        var diff = TextGolden.MaxAbsDiff(actual, expected);
        output.WriteLine($"{name}: max abs diff {diff:E2}");
        Assert.True(diff <= Tolerance, $"{name}: max abs diff {diff:E2} > {Tolerance:E0}");
    }

    /// <summary>CompVis CrossAttention with A1111's hypernetwork hook on the context (to_q on x only).</summary>
    private static Tensor Attention(SafetensorsFile model, string prefix, Tensor x, Tensor? context, IAttentionContextHook hook, int heads)
    {
        using var scope = NewDisposeScope();
        Tensor W(string key) => TensorReading.Read(model, model.Tensors.Single(t => t.Name == prefix + key));
        var (ck, cv) = hook.Transform(context ?? x);
        var q = nn.functional.linear(x, W("to_q.weight"));
        var k = nn.functional.linear(ck, W("to_k.weight"));
        var v = nn.functional.linear(cv, W("to_v.weight"));
        long b = x.shape[0], n = x.shape[1], inner = q.shape[2], d = inner / heads;
        Tensor Split(Tensor t) => t.reshape(b, t.shape[1], heads, d).permute(0, 2, 1, 3);
        var sim = Split(q).matmul(Split(k).transpose(-1, -2)) * Math.Pow(d, -0.5);
        var o = sim.softmax(-1).matmul(Split(v)).permute(0, 2, 1, 3).reshape(b, n, inner);
        return nn.functional.linear(o, W("to_out.0.weight"), W("to_out.0.bias")).MoveToOuterDisposeScope();
    }

    public static TheoryData<string, string> Cases() => new()
    {
        { "tiny_relu", "1.0" }, { "tiny_relu", "0.6" }, { "tiny_swish_ln", "1.0" }, { "tiny_swish_ln", "0.6" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ContextAndAttentionOutputsMatchA1111(string hn, string strength)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        using var network = Load(hn);
        var stack = new HypernetworkStack(new[] { (network, double.Parse(strength, CultureInfo.InvariantCulture)) });
        var context = TextGolden.Read(Golden, "input.context");
        var x64 = TextGolden.Read(Golden, "input.x64");
        var prefix = $"{hn}.s{strength}.";

        var (ck, cv) = HypernetworkStack.ApplyToContext(stack.Networks, context);
        AssertClose(prefix + "context_k", ck);
        AssertClose(prefix + "context_v", cv);
        var (xk, xv) = stack.Transform(x64);
        AssertClose(prefix + "x64_k", xk);
        AssertClose(prefix + "x64_v", xv);

        using var model = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd1.safetensors"));
        int heads = TextGolden.Json("tiny_sd1.config.json").GetProperty("unet").GetProperty("num_heads").GetInt32();
        AssertClose(prefix + "attn1_x64", Attention(model, Block + "attn1.", x64, null, stack, heads));
        AssertClose(prefix + "attn2_x64", Attention(model, Block + "attn2.", x64, context, stack, heads));
    }

    /// <summary>The real .pt files A1111 saved, read by our allow-list torch reader, give A1111's outputs.</summary>
    [Theory]
    [InlineData("tiny_relu")]
    [InlineData("tiny_swish_ln")]
    public void RealPtFilesReadByTheTorchReaderMatchA1111(string hn)
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        using var file = SharpDiffusion.Formats.ModelFileReader.Open(TestPaths.GoldenFile($"a1111/hypernetworks/{hn}.pt"));
        Assert.Equal(SharpDiffusion.Formats.ModelFormat.TorchZip, file.Format);
        using var network = Hypernetwork.Load(file);
        Assert.Equal(hn, network.Name);
        Assert.Equal(new[] { 32, 64 }, network.Widths);
        foreach (var strength in new[] { "1.0", "0.6" })
        {
            var stack = new HypernetworkStack(new[] { (network, double.Parse(strength, CultureInfo.InvariantCulture)) });
            var (ck, cv) = stack.Transform(TextGolden.Read(Golden, "input.context"));
            AssertClose($"{hn}.s{strength}.context_k", ck);
            AssertClose($"{hn}.s{strength}.context_v", cv);
            var (xk, xv) = stack.Transform(TextGolden.Read(Golden, "input.x64"));
            AssertClose($"{hn}.s{strength}.x64_k", xk);
            AssertClose($"{hn}.s{strength}.x64_v", xv);
        }
    }

    [Fact]
    public void WithoutHypernetworksTheAttentionIsUnchanged()
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var none = new HypernetworkStack(Array.Empty<(Hypernetwork, double)>());
        var context = TextGolden.Read(Golden, "input.context");
        var x64 = TextGolden.Read(Golden, "input.x64");
        var (k, v) = none.Transform(context);
        Assert.True(k.equal(context).all().item<bool>() && v.equal(context).all().item<bool>());
        using var model = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd1.safetensors"));
        AssertClose("none.attn1_x64", Attention(model, Block + "attn1.", x64, null, none, 4));
        AssertClose("none.attn2_x64", Attention(model, Block + "attn2.", x64, context, none, 4));
    }

    [Fact]
    public void StructureAndParameterNamesAreA1111s()
    {
        using var network = Load("tiny_swish_ln");
        Assert.Equal("tiny_swish_ln", network.Name);
        Assert.Equal(0L, network.Step);
        Assert.Equal(new[] { 32, 64 }, network.Widths);
        Assert.Equal(new[] { 1.0, 2.0, 1.0 }, network.Structure.LayerStructure);
        Assert.Equal("swish", network.Structure.ActivationFunc);
        Assert.True(network.Structure.IsLayerNorm);
        Assert.False(network.Structure.ActivateOutput);
        var expectedKeys = TextGolden.Json("a1111/hypernetwork.json").GetProperty("files")[1].GetProperty("layers").GetProperty("32")
            .GetProperty("state_dict").GetProperty("k").EnumerateArray().Select(e => e[0].GetString()!).ToArray();
        Assert.Equal(expectedKeys, network.ForWidth(32)!.Value.K.state_dict().Keys);
        Assert.Null(network.ForWidth(768));
        // The stand-in names the real .pt, so the hash is that file's (A1111's hypernetwork short hash: 10 digits).
        var sha = TextGolden.Json("a1111/hypernetwork.json").GetProperty("files")[1].GetProperty("sha256").GetString();
        Assert.Equal(sha, network.Sha256);
        Assert.Equal(sha![..10], network.ShortHash);
    }

    [Fact]
    public void HypernetworksApplyInOrder()
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        using var relu = Load("tiny_relu");
        using var swish = Load("tiny_swish_ln");
        var context = TextGolden.Read(Golden, "input.context");
        var (k, v) = HypernetworkStack.ApplyToContext(new[] { (relu, 1.0), (swish, 0.6) }, context);
        var expectedK = swish.ForWidth(32)!.Value.K.Apply(relu.ForWidth(32)!.Value.K.Apply(context, 1.0), 0.6);
        var expectedV = swish.ForWidth(32)!.Value.V.Apply(relu.ForWidth(32)!.Value.V.Apply(context, 1.0), 0.6);
        Assert.True(k.equal(expectedK).all().item<bool>());
        Assert.True(v.equal(expectedV).all().item<bool>());
        Assert.True(TextGolden.MaxAbsDiff(k, context) > 0.1);
    }
}
