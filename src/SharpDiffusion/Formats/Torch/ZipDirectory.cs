using System.Buffers.Binary;
using System.Text;

namespace SharpDiffusion.Formats.Torch;

/// <summary>
/// Reads a zip's central directory (ZIP64 included) to find every member's data offset, so stored members
/// can be read straight from a memory map. Throws <see cref="FormatException"/> with a one-line problem.
/// </summary>
internal static class ZipDirectory
{
    private const uint LocalHeaderSignature = 0x04034b50;
    private const uint CentralHeaderSignature = 0x02014b50;
    private const uint EndSignature = 0x06054b50;
    private const uint Zip64EndSignature = 0x06064b50;
    private const uint Zip64LocatorSignature = 0x07064b50;
    private const int EndRecordSize = 22;

    public static List<ZipEntry> Read(Stream s)
    {
        long length = s.Length;
        long eocd = FindEndRecord(s, length);
        var end = ReadAt(s, eocd, EndRecordSize);
        long entries = BinaryPrimitives.ReadUInt16LittleEndian(end.AsSpan(10));
        long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(12));
        long cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(end.AsSpan(16));
        if (entries == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF)
        {
            if (eocd < 20) throw new FormatException("ZIP64 end-of-directory locator missing");
            var locator = ReadAt(s, eocd - 20, 20);
            if (BinaryPrimitives.ReadUInt32LittleEndian(locator) != Zip64LocatorSignature)
                throw new FormatException("ZIP64 end-of-directory locator missing");
            long recordOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(locator.AsSpan(8));
            if (recordOffset < 0 || recordOffset > length - 56) throw new FormatException("ZIP64 end-of-directory record out of range");
            var record = ReadAt(s, recordOffset, 56);
            if (BinaryPrimitives.ReadUInt32LittleEndian(record) != Zip64EndSignature)
                throw new FormatException("ZIP64 end-of-directory record has a bad signature");
            entries = (long)BinaryPrimitives.ReadUInt64LittleEndian(record.AsSpan(32));
            cdSize = (long)BinaryPrimitives.ReadUInt64LittleEndian(record.AsSpan(40));
            cdOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(record.AsSpan(48));
        }
        if (cdOffset < 0 || cdSize < 0 || cdOffset > length || cdSize > length - cdOffset || cdSize > int.MaxValue)
            throw new FormatException("central directory lies outside the file");
        if (entries < 0 || entries > cdSize / 46) throw new FormatException($"central directory claims {entries} entries");
        var cd = ReadAt(s, cdOffset, (int)cdSize);
        var result = new List<ZipEntry>((int)entries);
        int p = 0;
        for (long i = 0; i < entries; i++)
        {
            if (p + 46 > cd.Length || BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(p)) != CentralHeaderSignature)
                throw new FormatException($"central directory entry {i} is damaged");
            int method = BinaryPrimitives.ReadUInt16LittleEndian(cd.AsSpan(p + 10));
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(p + 20));
            long size = BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(p + 24));
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(cd.AsSpan(p + 28));
            int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(cd.AsSpan(p + 30));
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(cd.AsSpan(p + 32));
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(p + 42));
            if (p + 46 + nameLen + extraLen + commentLen > cd.Length) throw new FormatException($"central directory entry {i} is damaged");
            string name = Encoding.UTF8.GetString(cd, p + 46, nameLen);
            ApplyZip64Extra(cd.AsSpan(p + 46 + nameLen, extraLen), ref size, ref compressed, ref localOffset);
            p += 46 + nameLen + extraLen + commentLen;
            result.Add(ToEntry(s, length, name, method, compressed, size, localOffset));
        }
        return result;
    }

    private static ZipEntry ToEntry(Stream s, long length, string name, int method, long compressed, long size, long localOffset)
    {
        if (localOffset < 0 || localOffset > length - 30) throw new FormatException($"member '{name}' lies outside the file");
        var local = ReadAt(s, localOffset, 30);
        if (BinaryPrimitives.ReadUInt32LittleEndian(local) != LocalHeaderSignature)
            throw new FormatException($"member '{name}' has a bad local header");
        long dataOffset = localOffset + 30 + BinaryPrimitives.ReadUInt16LittleEndian(local.AsSpan(26)) + BinaryPrimitives.ReadUInt16LittleEndian(local.AsSpan(28));
        if (compressed < 0 || size < 0 || dataOffset > length || compressed > length - dataOffset)
            throw new FormatException($"member '{name}' runs past the end of the file (truncated?)");
        if (method == ZipEntry.Stored && compressed != size)
            throw new FormatException($"stored member '{name}' has different compressed and uncompressed sizes");
        return new ZipEntry(name, method, compressed, size, dataOffset);
    }

    /// <summary>The ZIP64 extra field (id 1) holds, in order, only the sizes/offset whose 32-bit field is 0xFFFFFFFF.</summary>
    private static void ApplyZip64Extra(ReadOnlySpan<byte> extra, ref long size, ref long compressed, ref long localOffset)
    {
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int len = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (len > extra.Length - 4) return;
            var data = extra.Slice(4, len);
            if (id == 1)
            {
                int q = 0;
                if (size == 0xFFFFFFFF && q + 8 <= data.Length) { size = (long)BinaryPrimitives.ReadUInt64LittleEndian(data[q..]); q += 8; }
                if (compressed == 0xFFFFFFFF && q + 8 <= data.Length) { compressed = (long)BinaryPrimitives.ReadUInt64LittleEndian(data[q..]); q += 8; }
                if (localOffset == 0xFFFFFFFF && q + 8 <= data.Length) localOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(data[q..]);
                return;
            }
            extra = extra[(4 + len)..];
        }
    }

    private static long FindEndRecord(Stream s, long length)
    {
        if (length < EndRecordSize) throw new FormatException("too short for a zip archive");
        int window = (int)Math.Min(length, EndRecordSize + 65535);
        var tail = ReadAt(s, length - window, window);
        for (int i = window - EndRecordSize; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i)) == EndSignature) return length - window + i;
        }
        throw new FormatException("zip end-of-central-directory record not found (truncated?)");
    }

    private static byte[] ReadAt(Stream s, long offset, int count)
    {
        var buf = new byte[count];
        s.Position = offset;
        s.ReadExactly(buf);
        return buf;
    }
}
