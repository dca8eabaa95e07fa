namespace SharpDiffusion.Formats.Pickle;

/// <summary>
/// A torch storage named by a persistent id <c>('storage', storage_type, key, location, numel[, view])</c>.
/// The bytes stay in the file; the torch reader resolves <see cref="Key"/> to them.
/// </summary>
public sealed record PickledStorage(string TypeName, string Key, string Location, long ElementCount)
{
    /// <summary>Legacy-format storage views: where the view starts inside the root storage, in elements.</summary>
    public long ViewElementOffset { get; init; }
}
