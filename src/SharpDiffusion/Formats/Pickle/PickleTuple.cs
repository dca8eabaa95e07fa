namespace SharpDiffusion.Formats.Pickle;

/// <summary>A Python tuple read from a pickle (immutable, so usable as a dict key).</summary>
public sealed class PickleTuple : IReadOnlyList<object?>
{
    public static readonly PickleTuple Empty = new(Array.Empty<object?>());

    private readonly object?[] _items;

    public PickleTuple(object?[] items) => _items = items;

    public object? this[int index] => _items[index];

    public int Count => _items.Length;

    public IEnumerator<object?> GetEnumerator() => ((IEnumerable<object?>)_items).GetEnumerator();

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => _items.GetEnumerator();
}
