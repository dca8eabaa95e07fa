using SharpDiffusion.Formats;
using SharpDiffusion.Tests.Fixtures.KeySets;

namespace SharpDiffusion.Tests.Fixtures;

/// <summary>
/// A model file that exists only in memory: tensor names, dtypes, shapes and metadata, plus optional bytes for the
/// few tensors a test wants readable (LoRA <c>.alpha</c> scalars). Reading any other tensor fails loudly, which
/// proves the classifier stays on headers.
/// </summary>
public sealed class InMemoryModelFile : IModelFile
{
    private readonly Dictionary<string, byte[]> _data;

    public InMemoryModelFile(IEnumerable<TensorInfo> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        IReadOnlyDictionary<string, byte[]>? data = null, ModelFormat format = ModelFormat.Safetensors, string path = "memory.safetensors")
    {
        Tensors = tensors.ToList();
        Metadata = metadata ?? new Dictionary<string, string>();
        _data = data?.ToDictionary(kv => kv.Key, kv => kv.Value) ?? new Dictionary<string, byte[]>();
        Format = format;
        Path = path;
        SizeBytes = Tensors.Sum(t => t.ByteLength);
    }

    public static InMemoryModelFile From(KeySet keys, ModelFormat format = ModelFormat.Safetensors) =>
        new(keys.Entries.Select(e => e.ToTensorInfo()), keys.Metadata, keys.Data, format);

    public string Path { get; }
    public ModelFormat Format { get; }
    public IReadOnlyList<TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public long SizeBytes { get; }

    /// <summary>Names of tensors whose data was read, so tests can check the header-only promise.</summary>
    public List<string> ReadLog { get; } = new();

    public void ReadTensorData(TensorInfo tensor, Span<byte> destination)
    {
        ReadLog.Add(tensor.Name);
        if (!_data.TryGetValue(tensor.Name, out var bytes))
        {
            throw new InvalidOperationException($"{Path}: tensor {tensor.Name} has no data in this in-memory file");
        }
        bytes.AsSpan(0, (int)Math.Min(bytes.Length, destination.Length)).CopyTo(destination);
    }

    public void Dispose()
    {
    }
}
