using System.Buffers.Binary;
using System.Numerics;
using SharpDiffusion.Formats.Pickle;

namespace SharpDiffusion.Formats.Torch;

/// <summary>
/// The legacy (non-zip) torch.save format: pickled magic number, protocol version 1001, sys_info dict, the
/// object tree, the list of storage keys, then per storage an 8-byte little-endian element count and its raw
/// bytes. Data offsets are found by seeking; no tensor data is read.
/// </summary>
internal static class TorchLegacyReader
{
    public static readonly BigInteger Magic = BigInteger.Parse("1950a86a20f9469cfc6c", System.Globalization.NumberStyles.AllowHexSpecifier);
    public const long ProtocolVersion = 1001;

    public static (object? Root, TorchPersistentIds Ids, Dictionary<string, TorchStorageData> Storages) Read(FileStream file)
    {
        if (LooksLikeTar(file)) throw new PickleFormatException("the legacy tar torch format is not supported");
        file.Position = 0;
        var stream = new BufferedStream(file, 1 << 16);
        var plain = new PickleMachine(stream);
        object? magic;
        try
        {
            magic = plain.Load();
        }
        catch (PickleFormatException e)
        {
            throw new PickleFormatException("not a torch file (no pickled magic number: " + e.Message + ")");
        }
        if (magic is not BigInteger m || m != Magic) throw new PickleFormatException("not a torch file (bad magic number)");
        if (plain.Load() is not long protocol || protocol != ProtocolVersion)
            throw new PickleFormatException("unsupported legacy torch protocol version");
        if (plain.Load() is not PickleDict sysInfo) throw new PickleFormatException("legacy sys_info is not a dict");
        if (sysInfo.TryGetValue("little_endian", out var little) && little is false)
            throw new PickleFormatException("saved on a big-endian machine (only little-endian checkpoints can be read)");

        var ids = new TorchPersistentIds();
        var root = new PickleMachine(stream, ids.Load).Load();
        if (plain.Load() is not List<object?> keys) throw new PickleFormatException("legacy storage key list is missing");

        long offset = stream.Position;
        long length = file.Length;
        var storages = new Dictionary<string, TorchStorageData>(StringComparer.Ordinal);
        Span<byte> countBytes = stackalloc byte[8];
        foreach (var k in keys)
        {
            string key = k switch
            {
                string s => s,
                long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
                _ => throw new PickleFormatException("legacy storage key is not a string"),
            };
            if (!ids.Storages.TryGetValue(key, out var pickled)) throw new PickleFormatException($"storage '{key}' is listed but never referenced");
            if (storages.ContainsKey(key)) throw new PickleFormatException($"storage '{key}' is listed twice");
            if (offset > length - 8) throw new PickleFormatException($"storage '{key}' is missing (file truncated)");
            file.Position = offset;
            file.ReadExactly(countBytes);
            long count = BinaryPrimitives.ReadInt64LittleEndian(countBytes);
            TorchStorageTypes.TryGetDType(pickled.TypeName, out var dtype);
            if (count != pickled.ElementCount)
                throw new PickleFormatException($"storage '{key}' holds {count} elements, the pickle says {pickled.ElementCount}");
            if (count < 0 || count > (length - offset - 8) / dtype.ElementSize())
                throw new PickleFormatException($"storage '{key}' ({count} x {pickled.TypeName}) runs past the end of the file (truncated?)");
            long bytes = count * dtype.ElementSize();
            storages[key] = new TorchStorageData(key, offset + 8, bytes, null);
            offset += 8 + bytes;
        }
        foreach (var key in ids.KeysInOrder)
            if (!storages.ContainsKey(key)) throw new PickleFormatException($"storage '{key}' has no data in the file");
        return (root, ids, storages);
    }

    private static bool LooksLikeTar(FileStream file)
    {
        if (file.Length < 263) return false;
        var magic = new byte[5];
        file.Position = 257;
        file.ReadExactly(magic);
        return magic.AsSpan().SequenceEqual("ustar"u8);
    }
}
