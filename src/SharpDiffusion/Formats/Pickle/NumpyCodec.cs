using System.Buffers.Binary;

namespace SharpDiffusion.Formats.Pickle;

/// <summary>Decodes numpy scalars (<c>numpy.core.multiarray.scalar(dtype, bytes)</c>) into plain numbers.</summary>
internal static class NumpyCodec
{
    public static object Decode(string code, bool bigEndian, byte[] raw)
    {
        // numpy.dtype codes as pickled: kind letter + byte count ("i8", "f4", "b1", "u1").
        if (code.Length < 2 || !int.TryParse(code.AsSpan(1), out int size) || size != raw.Length)
            throw new PickleFormatException($"numpy scalar of dtype '{code}' with {raw.Length} bytes is not supported");
        Span<byte> b = raw.AsSpan().ToArray();
        if (bigEndian) b.Reverse();
        return (code[0], size) switch
        {
            ('b', 1) => b[0] != 0,
            ('i', 1) => (long)(sbyte)b[0],
            ('i', 2) => (long)BinaryPrimitives.ReadInt16LittleEndian(b),
            ('i', 4) => (long)BinaryPrimitives.ReadInt32LittleEndian(b),
            ('i', 8) => BinaryPrimitives.ReadInt64LittleEndian(b),
            ('u', 1) => (long)b[0],
            ('u', 2) => (long)BinaryPrimitives.ReadUInt16LittleEndian(b),
            ('u', 4) => (long)BinaryPrimitives.ReadUInt32LittleEndian(b),
            ('u', 8) => (long)BinaryPrimitives.ReadUInt64LittleEndian(b) is var u && u >= 0 ? u
                : throw new PickleFormatException("numpy uint64 scalar too large"),
            ('f', 2) => (double)BinaryPrimitives.ReadHalfLittleEndian(b),
            ('f', 4) => (double)BinaryPrimitives.ReadSingleLittleEndian(b),
            ('f', 8) => BinaryPrimitives.ReadDoubleLittleEndian(b),
            _ => throw new PickleFormatException($"numpy scalar of dtype '{code}' is not supported"),
        };
    }
}
