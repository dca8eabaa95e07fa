using SharpDiffusion.Formats.Pickle;

namespace SharpDiffusion.Formats.Torch;

/// <summary>
/// torch.load's persistent_load, as data: <c>('storage', storage_type, key, location, numel[, view_metadata])</c>
/// becomes a <see cref="PickledStorage"/>; every storage the pickle references is remembered by key.
/// </summary>
internal sealed class TorchPersistentIds
{
    private readonly Dictionary<string, PickledStorage> _storages = new(StringComparer.Ordinal);

    /// <summary>Referenced storages by key, in first-reference order.</summary>
    public IReadOnlyDictionary<string, PickledStorage> Storages => _storages;

    public List<string> KeysInOrder { get; } = new();

    public object? Load(object? pid)
    {
        if (pid is not PickleTuple t || t.Count < 5 || t[0] is not string kind)
            throw new PickleFormatException($"persistent id is {PickleValues.TypeName(pid)}, not a storage tuple");
        if (kind != "storage") throw new PickleFormatException($"persistent id of kind '{kind}' is not supported");
        if (t.Count > 6) throw new PickleFormatException("storage persistent id has too many fields");
        if (t[1] is not PickleGlobal type || type.Module is not ("torch" or "torch.storage") || !TorchStorageTypes.TryGetDType(type.Name, out _))
            throw new PickleFormatException($"storage persistent id names {PickleValues.TypeName(t[1])}, not a storage type");
        string key = t[2] switch
        {
            string s => s,
            long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => throw new PickleFormatException("storage key is not a string"),
        };
        if (key.Length == 0 || key.Length > 256 || key.Contains('/') || key.Contains('\\') || key.Contains(".."))
            throw new PickleFormatException("storage key is not a plain name");
        string location = t[3] as string ?? (t[3] is byte[] b ? System.Text.Encoding.ASCII.GetString(b) : "cpu");
        if (t[4] is not long numel || numel < 0) throw new PickleFormatException("storage element count is not a non-negative int");

        if (!_storages.TryGetValue(key, out var storage))
        {
            storage = new PickledStorage(type.Name, key, location, numel);
            _storages[key] = storage;
            KeysInOrder.Add(key);
        }
        else if (storage.TypeName != type.Name)
            throw new PickleFormatException($"storage '{key}' is referenced as both {storage.TypeName} and {type.Name}");

        // Legacy files may reference a view of a storage: (view_key, offset, view_size) in elements.
        if (t.Count == 6 && t[5] is PickleTuple { Count: 3 } view)
        {
            if (view[1] is not long offset || view[2] is not long viewSize || offset < 0 || viewSize < 0 || offset > numel - viewSize)
                throw new PickleFormatException($"storage view of '{key}' lies outside it");
            return storage with { ViewElementOffset = offset, ElementCount = viewSize };
        }
        if (t.Count == 6 && t[5] is not null) throw new PickleFormatException("storage view metadata is malformed");
        return storage;
    }
}
