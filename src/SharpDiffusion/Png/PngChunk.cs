using System.Buffers.Binary;

namespace SharpDiffusion.Png;

/// <summary>One chunk of a PNG file: 4-byte big-endian length, 4-letter type, data, CRC-32 over type and data.</summary>
public sealed record PngChunk(string Type, byte[] Data)
{
    public static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public void WriteTo(Stream output)
    {
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(header, (uint)Data.Length);
        for (int i = 0; i < 4; i++) header[4 + i] = (byte)Type[i];
        output.Write(header);
        output.Write(Data);
        uint crc = Crc32.Finish(Crc32.Update(Crc32.Update(Crc32.Start, header[4..]), Data));
        Span<byte> crcBytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crcBytes, crc);
        output.Write(crcBytes);
    }

    /// <summary>Splits a PNG into its chunks, checking the signature, lengths and every CRC.</summary>
    public static List<PngChunk> ReadAll(ReadOnlySpan<byte> png, string source)
    {
        if (png.Length < Signature.Length || !png[..Signature.Length].SequenceEqual(Signature))
            throw new PngFormatException(source, "not a PNG file (signature missing)");
        var chunks = new List<PngChunk>();
        int pos = Signature.Length;
        while (pos < png.Length)
        {
            if (png.Length - pos < 12) throw new PngFormatException(source, $"truncated chunk header at offset {pos}");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            if (length > int.MaxValue || length > png.Length - pos - 12)
                throw new PngFormatException(source, $"chunk at offset {pos} claims {length} bytes, past the end of the file");
            var typeBytes = png.Slice(pos + 4, 4);
            foreach (byte b in typeBytes)
                if (b is not (>= (byte)'A' and <= (byte)'Z' or >= (byte)'a' and <= (byte)'z'))
                    throw new PngFormatException(source, $"chunk at offset {pos} has an invalid type");
            string type = System.Text.Encoding.ASCII.GetString(typeBytes);
            var data = png.Slice(pos + 8, (int)length);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(png[(pos + 8 + (int)length)..]);
            uint actual = Crc32.Compute(png.Slice(pos + 4, 4 + (int)length));
            if (stored != actual) throw new PngFormatException(source, $"CRC mismatch in {type} chunk at offset {pos}");
            chunks.Add(new PngChunk(type, data.ToArray()));
            pos += 12 + (int)length;
            if (type == "IEND") break;
        }
        if (chunks.Count == 0 || chunks[0].Type != "IHDR") throw new PngFormatException(source, "first chunk is not IHDR");
        if (chunks[^1].Type != "IEND") throw new PngFormatException(source, "no IEND chunk (truncated file)");
        return chunks;
    }

    public static byte[] Assemble(IEnumerable<PngChunk> chunks)
    {
        using var output = new MemoryStream();
        output.Write(Signature);
        foreach (var chunk in chunks) chunk.WriteTo(output);
        return output.ToArray();
    }
}
