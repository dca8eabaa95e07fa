using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Text;

namespace SharpDiffusion.Tests.Fixtures.Torch;

/// <summary>
/// Writes fixture files exactly as torch.save lays them out: the zip format (stored members, data aligned to
/// 64 bytes, <c>&lt;prefix&gt;/data.pkl</c>, <c>byteorder</c>, <c>data/&lt;key&gt;</c>, <c>version</c>) and the legacy format
/// (magic, protocol 1001, sys_info, object pickle, key list, counted raw storages).
/// </summary>
internal static class TorchFixtureWriter
{
    public static readonly BigInteger LegacyMagic = BigInteger.Parse("01950a86a20f9469cfc6c", System.Globalization.NumberStyles.AllowHexSpecifier);

    public sealed record ZipOptions
    {
        public string Prefix { get; init; } = "archive";
        public bool Deflate { get; init; }
        public bool Zip64 { get; init; }
        public string? ByteOrder { get; init; } = "little";
        public bool OmitDataPkl { get; init; }
        public string? OmitStorage { get; init; }
    }

    public static void WriteZip(string path, object? root, IReadOnlyDictionary<string, FixtureStorage> storages, ZipOptions? options = null)
    {
        options ??= new ZipOptions();
        var members = new List<(string Name, byte[] Data)>();
        if (!options.OmitDataPkl) members.Add(($"{options.Prefix}/data.pkl", TorchPickler.Pickle(root, storages, legacy: false)));
        if (options.ByteOrder != null) members.Add(($"{options.Prefix}/byteorder", Encoding.ASCII.GetBytes(options.ByteOrder)));
        foreach (var (key, s) in storages)
            if (key != options.OmitStorage) members.Add(($"{options.Prefix}/data/{key}", s.Data));
        members.Add(($"{options.Prefix}/version", "3\n"u8.ToArray()));
        File.WriteAllBytes(path, ZipBytes(members, options.Deflate, options.Zip64));
    }

    public static void WriteLegacy(string path, object? root, IReadOnlyDictionary<string, FixtureStorage> storages, bool littleEndian = true)
    {
        using var f = new MemoryStream();
        var magic = new PickleWriter().Proto(2).Long(LegacyMagic).Stop().ToArray();
        f.Write(magic);
        f.Write(TorchPickler.PickleValue(1001L));
        var sysInfo = new FixtureDict
        {
            { "protocol_version", 1001L },
            { "little_endian", littleEndian },
            { "type_sizes", new FixtureDict { { "short", 2L }, { "int", 4L }, { "long", 4L } } },
        };
        f.Write(TorchPickler.PickleValue(sysInfo));
        f.Write(TorchPickler.Pickle(root, storages, legacy: true));
        f.Write(TorchPickler.PickleValue(storages.Keys.Cast<object?>().ToList()));
        Span<byte> count = stackalloc byte[8];
        foreach (var s in storages.Values)
        {
            BinaryPrimitives.WriteInt64LittleEndian(count, s.ElementCount);
            f.Write(count);
            f.Write(s.Data);
        }
        File.WriteAllBytes(path, f.ToArray());
    }

    /// <summary>A zip like PyTorchFileWriter (miniz) makes: local headers padded so data starts on 64-byte boundaries.</summary>
    public static byte[] ZipBytes(List<(string Name, byte[] Data)> members, bool deflate = false, bool zip64 = false)
    {
        using var z = new MemoryStream();
        var central = new MemoryStream();
        foreach (var (name, data) in members)
        {
            byte[] stored = data;
            ushort method = 0;
            if (deflate)
            {
                using var packed = new MemoryStream();
                using (var d = new DeflateStream(packed, CompressionLevel.Optimal, leaveOpen: true)) d.Write(data);
                stored = packed.ToArray();
                method = 8;
            }
            uint crc = Crc32(data);
            var nameBytes = Encoding.UTF8.GetBytes(name);
            long localOffset = z.Position;
            int baseLen = 30 + nameBytes.Length + 4;
            int pad = (int)((64 - (localOffset + baseLen) % 64) % 64);
            var extra = new byte[4 + pad];
            BinaryPrimitives.WriteUInt16LittleEndian(extra, 0x4246); // "FB" padding record, as PyTorch writes
            BinaryPrimitives.WriteUInt16LittleEndian(extra.AsSpan(2), (ushort)pad);
            var local = new byte[30];
            BinaryPrimitives.WriteUInt32LittleEndian(local, 0x04034b50);
            BinaryPrimitives.WriteUInt16LittleEndian(local.AsSpan(4), zip64 ? (ushort)45 : (ushort)20);
            BinaryPrimitives.WriteUInt16LittleEndian(local.AsSpan(8), method);
            BinaryPrimitives.WriteUInt32LittleEndian(local.AsSpan(14), crc);
            BinaryPrimitives.WriteUInt32LittleEndian(local.AsSpan(18), (uint)stored.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(local.AsSpan(22), (uint)data.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(local.AsSpan(26), (ushort)nameBytes.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(local.AsSpan(28), (ushort)extra.Length);
            z.Write(local);
            z.Write(nameBytes);
            z.Write(extra);
            z.Write(stored);

            // Central header; in ZIP64 mode sizes and offset move to the ZIP64 extra field.
            var zip64Extra = new byte[zip64 ? 28 : 0];
            if (zip64)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(zip64Extra, 1);
                BinaryPrimitives.WriteUInt16LittleEndian(zip64Extra.AsSpan(2), 24);
                BinaryPrimitives.WriteUInt64LittleEndian(zip64Extra.AsSpan(4), (ulong)data.Length);
                BinaryPrimitives.WriteUInt64LittleEndian(zip64Extra.AsSpan(12), (ulong)stored.Length);
                BinaryPrimitives.WriteUInt64LittleEndian(zip64Extra.AsSpan(20), (ulong)localOffset);
            }
            var c = new byte[46];
            BinaryPrimitives.WriteUInt32LittleEndian(c, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(4), 45);
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(6), zip64 ? (ushort)45 : (ushort)20);
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(10), method);
            BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(16), crc);
            BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(20), zip64 ? 0xFFFFFFFF : (uint)stored.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(24), zip64 ? 0xFFFFFFFF : (uint)data.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(28), (ushort)nameBytes.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(c.AsSpan(30), (ushort)zip64Extra.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(42), zip64 ? 0xFFFFFFFF : (uint)localOffset);
            central.Write(c);
            central.Write(nameBytes);
            central.Write(zip64Extra);
        }
        long cdOffset = z.Position;
        central.Position = 0;
        central.CopyTo(z);
        long cdSize = z.Position - cdOffset;
        if (zip64)
        {
            long recordOffset = z.Position;
            var rec = new byte[56];
            BinaryPrimitives.WriteUInt32LittleEndian(rec, 0x06064b50);
            BinaryPrimitives.WriteUInt64LittleEndian(rec.AsSpan(4), 44);
            BinaryPrimitives.WriteUInt16LittleEndian(rec.AsSpan(12), 45);
            BinaryPrimitives.WriteUInt16LittleEndian(rec.AsSpan(14), 45);
            BinaryPrimitives.WriteUInt64LittleEndian(rec.AsSpan(24), (ulong)members.Count);
            BinaryPrimitives.WriteUInt64LittleEndian(rec.AsSpan(32), (ulong)members.Count);
            BinaryPrimitives.WriteUInt64LittleEndian(rec.AsSpan(40), (ulong)cdSize);
            BinaryPrimitives.WriteUInt64LittleEndian(rec.AsSpan(48), (ulong)cdOffset);
            z.Write(rec);
            var loc = new byte[20];
            BinaryPrimitives.WriteUInt32LittleEndian(loc, 0x07064b50);
            BinaryPrimitives.WriteUInt64LittleEndian(loc.AsSpan(8), (ulong)recordOffset);
            BinaryPrimitives.WriteUInt32LittleEndian(loc.AsSpan(16), 1);
            z.Write(loc);
        }
        var end = new byte[22];
        BinaryPrimitives.WriteUInt32LittleEndian(end, 0x06054b50);
        BinaryPrimitives.WriteUInt16LittleEndian(end.AsSpan(8), zip64 ? (ushort)0xFFFF : (ushort)members.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(end.AsSpan(10), zip64 ? (ushort)0xFFFF : (ushort)members.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(end.AsSpan(12), zip64 ? 0xFFFFFFFF : (uint)cdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(end.AsSpan(16), zip64 ? 0xFFFFFFFF : (uint)cdOffset);
        z.Write(end);
        return z.ToArray();
    }

    private static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }
}
