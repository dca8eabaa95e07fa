using System.Text;
using System.Text.Json;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fixtures;

/// <summary>
/// Writes valid safetensors files for tests. The header (tensor order as given, contiguous data offsets, optional
/// <c>__metadata__</c>, padded with spaces to a multiple of 8) is written for real; the data section is only
/// allocated with <see cref="FileStream.SetLength"/>, so a 3.4 GB U-Net costs a few hundred KB of disk and no time.
/// Reading such a tensor gives zeros. Pass <c>data</c> to write real bytes for chosen tensors.
/// </summary>
internal static class SparseSafetensors
{
    public static void Create(string path, IEnumerable<(string Name, string DType, long[] Shape)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null, Func<string, byte[]?>? data = null)
    {
        var list = tensors.ToList();
        using var header = new MemoryStream();
        var offsets = new List<(string Name, long Begin, long End)>();
        using (var w = new Utf8JsonWriter(header))
        {
            w.WriteStartObject();
            if (metadata != null)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, dtype, shape) in list)
            {
                long bytes = ByteLength(dtype, shape);
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (var d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offsets.Add((name, offset, offset + bytes));
                offset += bytes;
            }
            w.WriteEndObject();
        }
        var headerBytes = header.ToArray().ToList();
        while (headerBytes.Count % 8 != 0) headerBytes.Add((byte)' ');
        long dataStart = 8 + headerBytes.Count;
        long dataSize = offsets.Count == 0 ? 0 : offsets[^1].End;

        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        file.Write(BitConverter.GetBytes((ulong)headerBytes.Count));
        file.Write(headerBytes.ToArray());
        file.SetLength(dataStart + dataSize);
        if (data == null) return;
        foreach (var (name, begin, end) in offsets)
        {
            var bytes = data(name);
            if (bytes == null) continue;
            if (bytes.Length != end - begin) throw new ArgumentException($"data for '{name}' has {bytes.Length} bytes, the tensor needs {end - begin}");
            file.Position = dataStart + begin;
            file.Write(bytes);
        }
    }

    public static void Create(string path, IEnumerable<InventoryEntry> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Create(path, tensors.Select(t => t.ToTuple()), metadata);

    public static long ByteLength(string dtype, long[] shape)
    {
        if (!TensorDTypeExtensions.TryParseSafetensorsName(dtype, out var parsed)) throw new ArgumentException($"unknown dtype {dtype}");
        return shape.Aggregate(1L, (a, b) => a * b) * parsed.ElementSize();
    }

    /// <summary>A JSON file written from an anonymous object or dictionary (configs, model_index.json).</summary>
    public static void WriteJson(string path, object value)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, JsonSerializer.Serialize(value, new JsonSerializerOptions { WriteIndented = true }), new UTF8Encoding(false));
    }
}
