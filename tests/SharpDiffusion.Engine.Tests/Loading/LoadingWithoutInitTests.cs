using System.Runtime.InteropServices;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Tests.Models;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Loading;

/// <summary>
/// Models built for loading skip the random init (uninitialised storage) and the loader fills every parameter:
/// directly when the stored type is the model's, through the reused staging buffer when it converts.
/// </summary>
public class LoadingWithoutInitTests
{
    [Fact]
    public void ForLoadingBuildsTheSameParametersAsTheInitialisingFactory()
    {
        using var golden = new GoldenFiles("tiny_sd1");
        var config = UNetConfig.FromLdmConfig(LdmConfigFile.Load(golden.ConfigPath));
        using var initialised = new UNetModel(config, LayerFactory.Cpu(ScalarType.BFloat16));
        using var forLoading = new UNetModel(config, LayerFactory.ForLoading(CPU, ScalarType.BFloat16));
        var expected = initialised.state_dict();
        var actual = forLoading.state_dict();
        Assert.Equal(expected.Keys.OrderBy(k => k, StringComparer.Ordinal), actual.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (name, tensor) in actual)
        {
            Assert.Equal(expected[name].shape, tensor.shape);
            Assert.Equal(ScalarType.BFloat16, tensor.dtype);
            Assert.Equal(DeviceType.CPU, tensor.device_type);
            Assert.False(tensor.requires_grad, name);
        }
    }

    [Fact]
    public void ForLoadingOnTheMetaDeviceStaysOnTheMetaDevice()
    {
        var factory = LayerFactory.ForLoading(META, ScalarType.Float32);
        using var linear = factory.Linear(8, 4);
        Assert.Equal(DeviceType.META, linear.weight!.device_type);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void LoadedParametersEqualTheStoredTensorsConverted(ScalarType dtype)
    {
        using var golden = new GoldenFiles("tiny_sd1");
        var config = UNetConfig.FromLdmConfig(LdmConfigFile.Load(golden.ConfigPath));
        using var unet = new UNetModel(config, LayerFactory.ForLoading(CPU, dtype));
        StrictLoader.Load(unet, golden.Checkpoint, "model.diffusion_model.");
        foreach (var (name, parameter) in unet.state_dict())
        {
            var info = golden.Checkpoint.Tensors.Single(t => t.Name == "model.diffusion_model." + name);
            using var stored = TensorReading.Read(golden.Checkpoint, info);
            using var converted = stored.to(dtype);
            Assert.True(converted.equal(parameter).all().item<bool>(), name);
        }
    }

    [Fact]
    public void AnFp16FileLoadsIntoBFloat16AndFloat32ModulesExactly()
    {
        using var dir = new TempDir();
        var path = dir.File("half.safetensors");
        var values = new[] { 1.5f, -2.25f, 0.1f, 65504f, -0.0f, 3.0e-5f, 7f, 1e-3f };
        var halves = values.Select(v => (Half)v).ToArray();
        // Two tensors of different sizes: the staging buffer is reused and grown between them.
        SafetensorsWriter.Write(path, new[]
        {
            TensorToWrite.FromBytes("weight", TensorDType.F16, new long[] { 2, 4 }, MemoryMarshal.AsBytes(halves.AsSpan()).ToArray()),
            TensorToWrite.FromBytes("bias", TensorDType.F16, new long[] { 2 }, MemoryMarshal.AsBytes(halves.AsSpan(0, 2)).ToArray()),
        });
        foreach (var dtype in new[] { ScalarType.BFloat16, ScalarType.Float32 })
        {
            using var file = SafetensorsFile.Open(path);
            using var linear = LayerFactory.ForLoading(CPU, dtype).Linear(4, 2);
            StrictLoader.Load(linear, file, "");
            using var expected = tensor(halves.Select(h => (float)h).ToArray()).reshape(2, 4).to(dtype);
            Assert.True(expected.equal(linear.weight!).all().item<bool>());
            using var expectedBias = tensor(new[] { (float)halves[0], (float)halves[1] }).to(dtype);
            Assert.True(expectedBias.equal(linear.bias!).all().item<bool>());
        }
    }
}
