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

    /// <summary>Prefixes up to this many separators deep are indexed; deeper ones are found by scanning.</summary>
    private const int IndexedDepth = 4;

    private HashSet<string>? _prefixes;

    /// <summary>
    /// Every name prefix that ends at one of the first <see cref="IndexedDepth"/> '.' or '/' separators
    /// ("model.", "model.diffusion_model.", "unet/", ...). Detectors probe dozens of prefixes that a file lacks;
    /// this answers each probe with one lookup instead of a scan over thousands of names.
    /// </summary>
    private HashSet<string> Prefixes => _prefixes ??= BuildPrefixes();

    private HashSet<string> BuildPrefixes()
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        var lookup = set.GetAlternateLookup<ReadOnlySpan<char>>();
        foreach (var t in Tensors)
        {
            var name = t.Name;
            int depth = 0;
            for (int i = 0; i < name.Length && depth < IndexedDepth; i++)
            {
                if (name[i] is '.' or '/')
                {
                    lookup.Add(name.AsSpan(0, i + 1)); // allocates only for prefixes not seen yet
                    depth++;
                }
            }
        }
        return set;
    }

    private static bool IsIndexed(string prefix)
    {
        if (prefix.Length == 0 || prefix[^1] is not ('.' or '/')) return false;
        int separators = 0;
        foreach (var c in prefix)
        {
            if (c is '.' or '/') separators++;
        }
        return separators <= IndexedDepth;
    }

    public TensorInfo? FirstWithPrefix(string prefix)
    {
        if (IsIndexed(prefix) && !Prefixes.Contains(prefix)) return null;
        foreach (var t in Tensors)
        {
            if (t.Name.StartsWith(prefix, StringComparison.Ordinal)) return t;
        }
        return null;
    }

    public bool AnyWithPrefix(string prefix) => IsIndexed(prefix) ? Prefixes.Contains(prefix) : FirstWithPrefix(prefix) != null;

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
