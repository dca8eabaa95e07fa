namespace SharpDiffusion.Formats.Pickle;

/// <summary>A Python set or frozenset read from a pickle, in pickle order (duplicates dropped).</summary>
public sealed class PickleSet
{
    private readonly List<object?> _items = new();
    private readonly HashSet<PickleKey> _seen = new();

    public bool Frozen { get; init; }

    public IReadOnlyList<object?> Items => _items;

    /// <summary>Adds an item; throws <see cref="PickleFormatException"/> when it is unhashable.</summary>
    internal void Add(object? item)
    {
        if (_seen.Add(new PickleKey(item))) _items.Add(item);
    }
}
