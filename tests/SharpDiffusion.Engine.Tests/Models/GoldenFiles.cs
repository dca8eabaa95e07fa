using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Models;

/// <summary>One tiny golden model: its checkpoint, config and reference tensors (see tests/data/golden/README.md).</summary>
internal sealed class GoldenFiles : IDisposable
{
    public GoldenFiles(string name)
    {
        Name = name;
        Checkpoint = SafetensorsFile.Open(TestPaths.GoldenFile(name + ".safetensors"));
        Goldens = SafetensorsFile.Open(TestPaths.GoldenFile(name + "_golden.safetensors"));
    }

    public string Name { get; }
    public SafetensorsFile Checkpoint { get; }
    public SafetensorsFile Goldens { get; }
    public string ConfigPath => TestPaths.GoldenFile(Name + ".config.json");

    public Tensor Golden(string tensorName) =>
        TensorReading.Read(Goldens, Goldens.Tensors.Single(t => t.Name == tensorName));

    public bool HasGolden(string tensorName) => Goldens.Tensors.Any(t => t.Name == tensorName);

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(b.shape, a.shape);
        using var d = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return d.item<double>();
    }

    public void Dispose()
    {
        Checkpoint.Dispose();
        Goldens.Dispose();
    }
}
