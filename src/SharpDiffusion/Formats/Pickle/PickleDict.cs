namespace SharpDiffusion.Formats.Pickle;

/// <summary>
/// A Python dict (or OrderedDict / defaultdict) read from a pickle: insertion-ordered; assigning an existing
/// key replaces its value in place, as Python does. Keys must be hashable pickle values.
/// </summary>
public sealed class PickleDict
{
    private readonly List<KeyValuePair<object?, object?>> _entries = new();
    private readonly Dictionary<PickleKey, int> _index = new();

    /// <summary>The global that built it ("collections.OrderedDict"), or null for a plain dict.</summary>
    public string? TypeName { get; init; }

    public IReadOnlyList<KeyValuePair<object?, object?>> Entries => _entries;

    public int Count => _entries.Count;

    /// <summary>Sets <paramref name="key"/>; throws <see cref="PickleFormatException"/> for an unhashable key.</summary>
    public void Set(object? key, object? value)
    {
        var k = new PickleKey(key);
        if (_index.TryGetValue(k, out int i)) _entries[i] = new(_entries[i].Key, value);
        else
        {
            _index[k] = _entries.Count;
            _entries.Add(new(key, value));
        }
    }

    public bool TryGetValue(object? key, out object? value)
    {
        if (PickleKey.IsHashable(key) && _index.TryGetValue(new PickleKey(key), out int i))
        {
            value = _entries[i].Value;
            return true;
        }
        value = null;
        return false;
    }
}
