using System.Text.Json;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Formats.Torch;
using static SharpDiffusion.Tests.Formats.Torch.TorchTestHelpers;

namespace SharpDiffusion.Tests.Formats.Torch;

/// <summary>Hypernetworks that A1111 saved with real torch 1.13 (golden/a1111/hypernetworks), checked against its JSON and weights.</summary>
public class A1111HypernetworkGoldenTests
{
    public static TheoryData<string> Files => new() { "hypernetworks/tiny_relu.pt", "hypernetworks/tiny_swish_ln.pt" };

    [Theory]
    [MemberData(nameof(Files))]
    public void OpensWithTheDescribedTensorsMetadataAndWeights(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.GoldenFile("a1111/hypernetwork.json")));
        var entry = doc.RootElement.GetProperty("files").EnumerateArray().Single(e => e.GetProperty("file").GetString() == file);
        using var f = TorchFile.Open(TestPaths.GoldenFile("a1111/" + file));
        Assert.Equal(ModelFormat.TorchZip, f.Format);
        Assert.Equal(entry.GetProperty("bytes").GetInt64(), f.SizeBytes);

        var dict = entry.GetProperty("dict_entries");
        Assert.Equal(dict.GetProperty("name").GetString(), f.Metadata["name"]);
        Assert.Equal(dict.GetProperty("activation_func").GetString(), f.Metadata["activation_func"]);
        Assert.Equal(dict.GetProperty("step").GetInt64().ToString(), f.Metadata["step"]);
        Assert.Equal(dict.GetProperty("is_layer_norm").GetBoolean() ? "true" : "false", f.Metadata["is_layer_norm"]);
        Assert.Equal("[1.0,2.0,1.0]", f.Metadata["layer_structure"]);
        Assert.Equal("[0,0,0]", f.Metadata["dropout_structure"]);
        Assert.Equal("null", f.Metadata["sd_checkpoint"]);
        Assert.Equal("Normal", f.Metadata["weight_initialization"]);
        Assert.Equal("false", f.Metadata["activate_output"]);

        string stem = Path.GetFileNameWithoutExtension(file);
        using var weights = SafetensorsFile.Open(TestPaths.GoldenFile("a1111/hypernetwork.safetensors"));
        int expectedTensors = 0;
        foreach (var layer in entry.GetProperty("layers").EnumerateObject())
        {
            var stateDicts = layer.Value.GetProperty("state_dict");
            foreach (var (kv, index) in new[] { ("k", 0), ("v", 1) })
            {
                foreach (var keyShape in stateDicts.GetProperty(kv).EnumerateArray())
                {
                    string key = keyShape[0].GetString()!;
                    long[] shape = keyShape[1].EnumerateArray().Select(d => d.GetInt64()).ToArray();
                    string name = $"{layer.Name}.{index}.{key}";
                    var t = Assert.Single(f.Tensors, t => t.Name == name);
                    Assert.Equal(shape, t.Shape);
                    Assert.Equal(TensorDType.F32, t.DType);
                    Assert.Equal("FloatStorage", t.TypeName);
                    Assert.Equal(ReadFloats(weights, $"weights.{stem}.{layer.Name}.{kv}.{key}"), ReadFloats(f, name));
                    expectedTensors++;
                }
            }
        }
        Assert.Equal(expectedTensors, f.Tensors.Count);
    }
}
