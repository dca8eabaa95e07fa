using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>Reads tensors of one golden safetensors file (tests/data/golden) by name.</summary>
internal sealed class GoldenTensors : IDisposable
{
    private readonly SafetensorsFile file;

    private GoldenTensors(string path)
    {
        file = SafetensorsFile.Open(path);
    }

    public static GoldenTensors Open(string fileName) => new(TestPaths.GoldenFile(fileName));

    public bool Has(string name) => file.Tensors.Any(t => t.Name == name);

    /// <summary>The tensor as float32 on the CPU (the caller disposes it).</summary>
    public Tensor Get(string name)
    {
        var info = file.Tensors.FirstOrDefault(t => t.Name == name)
            ?? throw new KeyNotFoundException($"{file.Path} has no tensor '{name}'");
        return TensorReading.Read(file, info, ScalarType.Float32);
    }

    public float[] Floats(string name)
    {
        using var t = Get(name);
        return t.data<float>().ToArray();
    }

    public double[] Doubles(string name) => Floats(name).Select(v => (double)v).ToArray();

    /// <summary>An F64 tensor's values at full precision.</summary>
    public double[] Float64s(string name)
    {
        var info = file.Tensors.FirstOrDefault(t => t.Name == name)
            ?? throw new KeyNotFoundException($"{file.Path} has no tensor '{name}'");
        using var t = TensorReading.Read(file, info, ScalarType.Float64);
        return t.data<double>().ToArray();
    }

    public void Dispose() => file.Dispose();
}
