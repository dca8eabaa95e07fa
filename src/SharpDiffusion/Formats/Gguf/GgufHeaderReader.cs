using System.Buffers.Binary;
using System.Text;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Formats.Gguf;

/// <summary>
/// Little-endian reads from the header of a GGUF file with bounds checks: every length is checked against the
/// bytes left in the file before anything is allocated, so a corrupt length gives an error, never a huge allocation.
/// </summary>
internal sealed class GgufHeaderReader
{
    private readonly Stream _stream;
    private readonly string _path;
    private readonly byte[] _scratch = new byte[8];

    public GgufHeaderReader(Stream stream, string path)
    {
        _stream = stream;
        _path = path;
        Length = stream.Length;
    }

    public long Length { get; }
    public long Position => _stream.Position;
    public long Remaining => Length - _stream.Position;

    public InvalidModelFileException Fail(string problem) => new(_path, problem);

    private ReadOnlySpan<byte> Take(int count, string what)
    {
        if (Remaining < count)
            throw Fail($"truncated: file ends at byte {Length} while reading {what} at byte {Position}");
        _stream.ReadExactly(_scratch, 0, count);
        return _scratch.AsSpan(0, count);
    }

    public byte ReadByte(string what) => Take(1, what)[0];
    public ushort ReadUInt16(string what) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, what));
    public uint ReadUInt32(string what) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, what));
    public ulong ReadUInt64(string what) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, what));
    public float ReadSingle(string what) => BinaryPrimitives.ReadSingleLittleEndian(Take(4, what));
    public double ReadDouble(string what) => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, what));

    /// <summary>A count or length that must fit the rest of the file at <paramref name="minBytesEach"/> bytes per item.</summary>
    public long ReadCount(string what, long minBytesEach)
    {
        ulong n = ReadUInt64(what);
        if (n > (ulong)(Remaining / Math.Max(1, minBytesEach)))
            throw Fail($"{what} {n} cannot fit in the {Remaining} bytes left in the file (truncated or corrupt header?)");
        return (long)n;
    }

    /// <summary>A gguf_string: uint64 byte length, then UTF-8 bytes (no terminator).</summary>
    public string ReadString(string what, int maxBytes)
    {
        long length = ReadCount(what + " length", 1);
        if (length > maxBytes)
            throw Fail($"{what} is {length} bytes long, over the {maxBytes}-byte limit (corrupt header?)");
        var bytes = new byte[length];
        _stream.ReadExactly(bytes);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Fail($"{what} at byte {Position - length} is not valid UTF-8");
        }
    }

    /// <summary>Skips a gguf_string without reading it (large string arrays are only summarised).</summary>
    public void SkipString(string what)
    {
        long length = ReadCount(what + " length", 1);
        _stream.Seek(length, SeekOrigin.Current);
    }

    public void Skip(long bytes)
    {
        if (bytes > Remaining) throw Fail($"truncated: {bytes} bytes needed at byte {Position}, {Remaining} left");
        _stream.Seek(bytes, SeekOrigin.Current);
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static string Quote(string text) => MessageText.Quote(text);
}
