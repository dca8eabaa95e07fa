using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Hypernetworks;

/// <summary>
/// An <see cref="IModelFile"/> over tensors in memory, named as the torch reader flattens a pickle (tests for
/// loaders written against IModelFile before that reader is merged).
/// </summary>
internal sealed class InMemoryModelFile : IModelFile
{
    private readonly Dictionary<string, Tensor> _data;

    public InMemoryModelFile(string path, IEnumerable<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Path = path;
        _data = tensors.ToDictionary(t => t.Name, t => t.Value.detach().cpu().contiguous().clone(), StringComparer.Ordinal);
        Tensors = _data.Select(kv => new TensorInfo(kv.Key, DType(kv.Value), kv.Value.shape)).ToList();
        Metadata = metadata ?? new Dictionary<string, string>();
    }

    public string Path { get; }
    public ModelFormat Format => ModelFormat.TorchZip;
    public IReadOnlyList<TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public long SizeBytes => Tensors.Sum(t => t.ByteLength);

    public void ReadTensorData(TensorInfo tensor, Span<byte> destination) => _data[tensor.Name].bytes.CopyTo(destination);

    public void Dispose()
    {
        foreach (var t in _data.Values) t.Dispose();
    }

    internal static TensorDType DType(Tensor t) => t.dtype switch
    {
        ScalarType.Float32 => TensorDType.F32,
        ScalarType.Float16 => TensorDType.F16,
        ScalarType.BFloat16 => TensorDType.BF16,
        ScalarType.Float64 => TensorDType.F64,
        ScalarType.Int64 => TensorDType.I64,
        ScalarType.Int32 => TensorDType.I32,
        _ => throw new ArgumentException($"unsupported test dtype {t.dtype}"),
    };
}
