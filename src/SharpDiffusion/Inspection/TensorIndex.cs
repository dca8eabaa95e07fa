using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>
/// Name lookup over a file's tensor list, built once per classification so detectors can ask
/// "is this key present" and "which keys start with this" without rescanning the list each time.
/// </summary>
internal sealed class TensorIndex
{
    private readonly Dictionary<string, TensorInfo> _byName;

    public TensorIndex(IModelFile file)
    {
        File = file;
        Tensors = file.Tensors;
        _byName = new Dictionary<string, TensorInfo>(Tensors.Count, StringComparer.Ordinal);
        foreach (var t in Tensors) _byName.TryAdd(t.Name, t);
    }

    public IModelFile File { get; }

    public IReadOnlyList<TensorInfo> Tensors { get; }

    public IReadOnlyDictionary<string, string> Metadata => File.Metadata;

    public int Count => Tensors.Count;

    public TensorInfo? Get(string name) => _byName.GetValueOrDefault(name);

    public bool Has(string name) => _byName.ContainsKey(name);

    public TensorInfo? FirstWithPrefix(string prefix)
    {
        foreach (var t in Tensors)
        {
            if (t.Name.StartsWith(prefix, StringComparison.Ordinal)) return t;
        }
        return null;
    }

    public bool AnyWithPrefix(string prefix) => FirstWithPrefix(prefix) != null;

    public int CountWithPrefix(string prefix)
    {
        int n = 0;
        foreach (var t in Tensors)
        {
            if (t.Name.StartsWith(prefix, StringComparison.Ordinal)) n++;
        }
        return n;
    }

    public TensorInfo? FirstContaining(string fragment)
    {
        foreach (var t in Tensors)
        {
            if (t.Name.Contains(fragment, StringComparison.Ordinal)) return t;
        }
        return null;
    }

    public TensorInfo? FirstEndingWith(string suffix)
    {
        foreach (var t in Tensors)
        {
            if (t.Name.EndsWith(suffix, StringComparison.Ordinal)) return t;
        }
        return null;
    }

    public string? Meta(string key) => Metadata.TryGetValue(key, out var v) && !string.IsNullOrWhiteSpace(v) ? v : null;
}
