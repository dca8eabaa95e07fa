using System.Globalization;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Tests.Models;

/// <summary>
/// A model file made of a reference inventory (name, dtype, shape per line): names and shapes only,
/// enough for architecture detection; reading data is refused.
/// </summary>
internal sealed class ReferenceInventory : IModelFile
{
    private ReferenceInventory(string path, IReadOnlyList<TensorInfo> tensors)
    {
        Path = path;
        Tensors = tensors;
    }

    public static ReferenceInventory Load(string path)
    {
        var tensors = new List<TensorInfo>();
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0) continue;
            var parts = line.Split('\t');
            var dtype = Enum.Parse<TensorDType>(parts[1]);
            var shape = parts[2].Trim('[', ']').Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            tensors.Add(new TensorInfo(parts[0], dtype, shape));
        }
        return new ReferenceInventory(path, tensors);
    }

    public string Path { get; }
    public ModelFormat Format => ModelFormat.Safetensors;
    public IReadOnlyList<TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();
    public long SizeBytes => 0;

    public void ReadTensorData(TensorInfo tensor, Span<byte> destination) =>
        throw new InvalidOperationException("a reference inventory has no tensor data");

    public void Dispose() { }

    /// <summary>"name -> [shape]" of the tensors under a prefix, prefix removed.</summary>
    public Dictionary<string, string> ShapesUnder(string prefix) => Tensors
        .Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal))
        .ToDictionary(t => t.Name[prefix.Length..], t => t.ShapeText);
}
