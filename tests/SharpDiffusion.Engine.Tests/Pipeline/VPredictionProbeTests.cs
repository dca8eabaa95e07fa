using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Engine.Tests.Pipeline;

/// <summary>
/// SD2 checkpoints without a parameterization in their config are probed as A1111 does. The tiny SD2 model's final
/// convolution is replaced by a constant output c, so the probe statistic is exactly c - 0.5 and the verdict known.
/// </summary>
public class VPredictionProbeTests
{
    private const string OutWeight = "model.diffusion_model.out.2.weight";
    private const string OutBias = "model.diffusion_model.out.2.bias";

    [Theory]
    [InlineData(-2.0f, Prediction.V)]    // statistic -2.5 < -1
    [InlineData(0.0f, Prediction.Eps)]   // statistic -0.5
    [InlineData(-0.4f, Prediction.Eps)]  // statistic -0.9: just above the threshold
    public void AnSd2CheckpointWithoutParameterizationIsProbed(float constantOutput, Prediction expected)
    {
        using var dir = new TempDir();
        var checkpoint = ConstantOutputCopy(dir, constantOutput);
        var config = ConfigWithoutParameterization(dir);
        using var model = StableDiffusionCheckpoint.Load(checkpoint, new CheckpointLoadOptions { ConfigPath = config });
        Assert.Equal(PredictionSource.Probe, model.PredictionSource);
        Assert.Equal(expected, model.Prediction);
        Assert.Equal(constantOutput - 0.5, VPredictionProbe.Statistic(model.UNet), 5);
    }

    [Fact]
    public void TheConfigAndTheCallerOutrankTheProbe()
    {
        using var dir = new TempDir();
        var checkpoint = ConstantOutputCopy(dir, 0.0f); // the probe would say eps
        var golden = TestPaths.GoldenFile("tiny_sd2v.config.json");
        using (var model = StableDiffusionCheckpoint.Load(checkpoint, new CheckpointLoadOptions { ConfigPath = golden }))
        {
            Assert.Equal(PredictionSource.Config, model.PredictionSource);
            Assert.Equal(Prediction.V, model.Prediction);
        }
        using (var model = StableDiffusionCheckpoint.Load(checkpoint, new CheckpointLoadOptions { ConfigPath = ConfigWithoutParameterization(dir), Prediction = Prediction.V }))
        {
            Assert.Equal(PredictionSource.Option, model.PredictionSource);
            Assert.Equal(Prediction.V, model.Prediction);
        }
    }

    [Fact]
    public void Sd1CheckpointsAreNotProbed()
    {
        using var model = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"),
            new CheckpointLoadOptions { ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json") });
        Assert.Equal(Prediction.Eps, model.Prediction);
        Assert.NotEqual(PredictionSource.Probe, model.PredictionSource);
    }

    private static string ConstantOutputCopy(TempDir dir, float value)
    {
        var path = dir.File("tiny_sd2_constant.safetensors");
        using var source = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd2v.safetensors"));
        var tensors = source.Tensors.Select(t => t.Name switch
        {
            OutWeight => Filled(t, 0f),
            OutBias => Filled(t, value),
            _ => TensorToWrite.FromModelFile(source, t),
        }).ToList();
        SafetensorsWriter.Write(path, tensors);
        return path;
    }

    private static TensorToWrite Filled(TensorInfo info, float value)
    {
        Assert.Equal(TensorDType.F32, info.DType);
        var values = Enumerable.Repeat(value, checked((int)info.ElementCount)).ToArray();
        return TensorToWrite.FromBytes(info.Name, info.DType, info.Shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
    }

    private static string ConfigWithoutParameterization(TempDir dir)
    {
        var json = JsonNode.Parse(File.ReadAllText(TestPaths.GoldenFile("tiny_sd2v.config.json")))!.AsObject();
        // Both places a config can say it: the goldens' top level and the LDM yaml's model.params.
        Assert.True(json.Remove("parameterization"));
        Assert.True(json["ldm_config"]!["model"]!["params"]!.AsObject().Remove("parameterization"));
        var path = dir.File("tiny_sd2_noparam.config.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }
}
