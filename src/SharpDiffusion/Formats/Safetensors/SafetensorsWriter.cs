using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace SharpDiffusion.Formats.Safetensors;

/// <summary>
/// Writes .safetensors files atomically: everything goes to <c>&lt;path&gt;.tmp-&lt;random&gt;</c> in the same folder,
/// which replaces <c>path</c> only once complete; on any failure the temporary file is deleted and an existing
/// file under <c>path</c> is left untouched. Tensors are written in the order given and streamed one at a time.
/// </summary>
public static class SafetensorsWriter
{
    private const int CopyBufferBytes = 1 << 20;

    /// <summary>
    /// Writes <paramref name="tensors"/> (in order) with optional <c>__metadata__</c>. <paramref name="progress"/>
    /// receives the cumulative number of tensor data bytes written.
    /// </summary>
    /// <exception cref="ArgumentException">Invalid or duplicate names, negative dimensions, quantized dtypes.</exception>
    /// <exception cref="InvalidOperationException">A tensor callback wrote more or fewer bytes than its shape needs.</exception>
    public static void Write(string path, IEnumerable<TensorToWrite> tensors,
        IReadOnlyDictionary<string, string>? metadata = null, IProgress<long>? progress = null)
    {
        var list = tensors.ToList();
        var layout = Describe(list.Select(t => (t.Name, t.DType, t.Shape)));
        var header = BuildHeader(layout, metadata);
        WriteAtomically(path, stream =>
        {
            WriteHeader(stream, header);
            long total = 0;
            for (int i = 0; i < list.Count; i++)
            {
                var tensor = list[i];
                long expected = layout[i].ByteLength;
                var data = new TensorDataStream(stream, tensor.Name, expected, n =>
                {
                    total += n;
                    progress?.Report(total);
                });
                tensor.WriteData(data);
                if (data.Written != expected)
                    throw new InvalidOperationException(
                        $"tensor '{tensor.Name}' wrote {data.Written} bytes, its {tensor.DType.SafetensorsName()} {ShapeText(tensor.Shape)} needs {expected}");
            }
        });
    }

    /// <summary>
    /// Writes a header for <paramref name="tensors"/> and extends the file to full length without writing data:
    /// on file systems with sparse files the data is a hole (reads as zeros), so tests of model-sized files stay
    /// small on disk. Only <see cref="TensorInfo.Name"/>, <see cref="TensorInfo.DType"/> and <see cref="TensorInfo.Shape"/> are used.
    /// </summary>
    public static void WriteSparse(string path, IEnumerable<TensorInfo> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var layout = Describe(tensors.Select(t => (t.Name, t.DType, t.Shape)));
        var header = BuildHeader(layout, metadata);
        long dataBytes = layout.Sum(t => t.ByteLength);
        WriteAtomically(path, stream =>
        {
            WriteHeader(stream, header);
            stream.Flush();
            stream.SetLength(8 + header.Length + dataBytes);
        });
    }

    /// <summary>Element count times element size, or -1 for a quantized dtype, a negative dimension or an overflow.</summary>
    public static long ComputeByteLength(TensorDType dtype, long[] shape)
    {
        long size = dtype.ElementSize();
        if (size == 0) return -1;
        long count = 1;
        foreach (long d in shape)
        {
            if (d < 0) return -1;
            if (d != 0 && count > long.MaxValue / d) return -1;
            count *= d;
        }
        return count > long.MaxValue / size ? -1 : count * size;
    }

    internal readonly record struct TensorLayout(string Name, TensorDType DType, long[] Shape, long ByteLength);

    private static List<TensorLayout> Describe(IEnumerable<(string Name, TensorDType DType, long[] Shape)> tensors)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var layout = new List<TensorLayout>();
        foreach (var (name, dtype, shape) in tensors)
        {
            if (name == "__metadata__")
                throw new ArgumentException("a tensor cannot be named __metadata__ (reserved by the format)", nameof(tensors));
            if (!names.Add(name))
                throw new ArgumentException($"tensor '{name}' is listed twice", nameof(tensors));
            if (dtype == TensorDType.Quantized)
                throw new ArgumentException($"tensor '{name}': safetensors cannot store block-quantized data", nameof(tensors));
            long bytes = ComputeByteLength(dtype, shape);
            if (bytes < 0)
                throw new ArgumentException($"tensor '{name}': shape {ShapeText(shape)} is invalid", nameof(tensors));
            layout.Add(new TensorLayout(name, dtype, (long[])shape.Clone(), bytes));
        }
        return layout;
    }

    /// <summary>
    /// The JSON header, space-padded to a multiple of 8 bytes so the data section (at 8 + header length) is
    /// 8-byte aligned, as the reference writer does.
    /// </summary>
    internal static byte[] BuildHeader(IReadOnlyList<TensorLayout> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        // Relaxed escaping keeps non-ASCII metadata readable; the output is still strict JSON.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.SafetensorsName());
                json.WriteStartArray("shape");
                foreach (long d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.ByteLength;
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < padding; i++) buffer.WriteByte((byte)' ');
        if (buffer.Length > SafetensorsFile.MaxHeaderBytes)
            throw new ArgumentException($"the header would be {buffer.Length} bytes, over the {SafetensorsFile.MaxHeaderBytes}-byte limit readers accept");
        return buffer.ToArray();
    }

    private static void WriteHeader(Stream stream, byte[] header)
    {
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
        stream.Write(length);
        stream.Write(header);
    }

    /// <summary>Runs <paramref name="write"/> against a temporary file beside <paramref name="path"/>, then renames it over <paramref name="path"/>.</summary>
    internal static void WriteAtomically(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        string temp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..12];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, CopyBufferBytes))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static void TryDelete(string file)
    {
        try { File.Delete(file); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static string ShapeText(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
