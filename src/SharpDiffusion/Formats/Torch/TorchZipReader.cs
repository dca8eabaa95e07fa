using System.IO.Compression;
using SharpDiffusion.Formats.Pickle;

namespace SharpDiffusion.Formats.Torch;

/// <summary>
/// The torch.save zip format: <c>&lt;prefix&gt;/data.pkl</c> (the object tree), <c>&lt;prefix&gt;/data/&lt;key&gt;</c>
/// (one member per storage, raw little-endian), optional <c>&lt;prefix&gt;/byteorder</c>.
/// </summary>
internal static class TorchZipReader
{
    /// <summary>data.pkl above this size is refused (real ones are a few MB).</summary>
    private const long MaxPickleBytes = 1L << 30;

    public static (object? Root, TorchPersistentIds Ids, Dictionary<string, TorchStorageData> Storages) Read(Stream file)
    {
        List<ZipEntry> entries;
        try
        {
            entries = ZipDirectory.Read(file);
        }
        catch (FormatException e)
        {
            throw new PickleFormatException("zip archive: " + e.Message);
        }
        var pickles = entries.Where(e => e.Name.EndsWith("/data.pkl", StringComparison.Ordinal) && e.Name.IndexOf('/') == e.Name.Length - 9).ToList();
        if (pickles.Count == 0) throw new PickleFormatException("zip archive has no <folder>/data.pkl (not a torch file)");
        if (pickles.Count > 1) throw new PickleFormatException("zip archive has several data.pkl members");
        string prefix = pickles[0].Name[..^"data.pkl".Length];
        var byName = new Dictionary<string, ZipEntry>(StringComparer.Ordinal);
        foreach (var e in entries) byName.TryAdd(e.Name, e);

        if (byName.TryGetValue(prefix + "byteorder", out var byteorder))
        {
            string order = System.Text.Encoding.ASCII.GetString(ReadMember(file, byteorder, 64)).Trim();
            if (order != "little")
                throw new PickleFormatException($"byte order '{order}' is not supported (only little-endian checkpoints can be read)");
        }

        var ids = new TorchPersistentIds();
        object? root;
        using (var pkl = new MemoryStream(ReadMember(file, pickles[0], MaxPickleBytes), writable: false))
            root = new PickleMachine(pkl, ids.Load).Load();

        var storages = new Dictionary<string, TorchStorageData>(StringComparer.Ordinal);
        foreach (var key in ids.KeysInOrder)
        {
            var pickled = ids.Storages[key];
            string name = prefix + "data/" + key;
            if (!byName.TryGetValue(name, out var entry)) throw new PickleFormatException($"storage member '{name}' is missing");
            TorchStorageTypes.TryGetDType(pickled.TypeName, out var dtype);
            if (pickled.ElementCount > long.MaxValue / 8) throw new PickleFormatException($"storage '{key}' element count {pickled.ElementCount} is impossible");
            long needed = pickled.ElementCount * dtype.ElementSize();
            if (entry.Size < needed)
                throw new PickleFormatException($"storage member '{name}' holds {entry.Size} bytes, the pickle says {pickled.ElementCount} x {pickled.TypeName} ({needed} bytes)");
            if (entry.Method is not (ZipEntry.Stored or ZipEntry.Deflated))
                throw new PickleFormatException($"storage member '{name}' uses zip compression method {entry.Method}");
            storages[key] = new TorchStorageData(key, entry.DataOffset, needed, entry.Method == ZipEntry.Deflated ? entry : null);
        }
        return (root, ids, storages);
    }

    /// <summary>A whole member's bytes (inflated if needed), refusing members larger than <paramref name="limit"/>.</summary>
    public static byte[] ReadMember(Stream file, ZipEntry entry, long limit)
    {
        if (entry.Size > limit || entry.Size > Array.MaxLength)
            throw new PickleFormatException($"member '{entry.Name}' is {entry.Size} bytes, more than the {limit}-byte limit");
        // Deflate cannot expand more than ~1032:1, so a larger claimed size is a lie that would waste memory.
        if (entry.Method == ZipEntry.Deflated && entry.Size > entry.CompressedSize * 1032 + 1024)
            throw new PickleFormatException($"member '{entry.Name}' claims {entry.Size} bytes from {entry.CompressedSize} compressed");
        var data = new byte[entry.Size];
        file.Position = entry.DataOffset;
        switch (entry.Method)
        {
            case ZipEntry.Stored:
                file.ReadExactly(data);
                return data;
            case ZipEntry.Deflated:
                try
                {
                    using var bounded = new MemoryStream(ReadCompressed(file, entry), writable: false);
                    using var inflater = new DeflateStream(bounded, CompressionMode.Decompress);
                    inflater.ReadExactly(data);
                    return data;
                }
                catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
                {
                    throw new PickleFormatException($"member '{entry.Name}' does not inflate: {e.Message}");
                }
            default:
                throw new PickleFormatException($"member '{entry.Name}' uses zip compression method {entry.Method}");
        }
    }

    private static byte[] ReadCompressed(Stream file, ZipEntry entry)
    {
        if (entry.CompressedSize > Array.MaxLength) throw new PickleFormatException($"member '{entry.Name}' is too large to inflate");
        var packed = new byte[entry.CompressedSize];
        file.Position = entry.DataOffset;
        file.ReadExactly(packed);
        return packed;
    }
}
