using System.Text.Json;

namespace SharpDiffusion.Formats.Safetensors;

/// <summary>
/// A .safetensors file: 8-byte little-endian header length, a JSON header (tensor name to dtype, shape,
/// data_offsets; optional <c>__metadata__</c> of strings), then the raw data. Opening reads and validates the
/// header only; tensor data is read with positional reads (<see cref="ContiguousTensorData"/>), not through a memory
/// map whose pages would stay in the resident set while the file is open (2 GB more RSS for a loaded SD1.5).
/// </summary>
public sealed class SafetensorsFile : IModelFile
{
    /// <summary>Headers above this size are refused (the reference implementation's limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private readonly ContiguousTensorData _data;

    private SafetensorsFile(string path, long size, long dataStart, List<TensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        SizeBytes = size;
        DataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
        _data = new ContiguousTensorData(path, size, dataStart, checkSizeOnOpen: true);
    }

    public string Path { get; }
    public ModelFormat Format => ModelFormat.Safetensors;
    public IReadOnlyList<TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public long SizeBytes { get; }

    /// <summary>Absolute file offset of the data section (8 + header length).</summary>
    public long DataStart { get; }

    public static SafetensorsFile Open(string path)
    {
        using var stream = OpenRead(path);
        try
        {
            return Read(path, stream);
        }
        catch (IOException e)
        {
            throw new InvalidModelFileException(path, "read error: " + MessageText.OneLine(e.Message), e);
        }
    }

    internal static FileStream OpenRead(string path)
    {
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidModelFileException(path, "cannot open: " + MessageText.OneLine(e.Message), e);
        }
    }

    private static SafetensorsFile Read(string path, FileStream stream)
    {
        long size = stream.Length;
        if (size == 0) throw new InvalidModelFileException(path, "empty file");
        if (size < 8) throw new InvalidModelFileException(path, $"truncated: {size} bytes, too short for a safetensors header length");
        Span<byte> lenBytes = stackalloc byte[8];
        stream.ReadExactly(lenBytes);
        ulong headerLen = BitConverter.ToUInt64(lenBytes);
        if (headerLen > MaxHeaderBytes)
            throw new InvalidModelFileException(path, $"header length {headerLen} exceeds the {MaxHeaderBytes}-byte limit");
        if ((long)headerLen > size - 8)
            throw new InvalidModelFileException(path, $"header length {headerLen} is larger than the file ({size} bytes)");
        if (headerLen < 2) throw new InvalidModelFileException(path, $"header length {headerLen} is too small for a JSON object");
        var header = new byte[headerLen];
        stream.ReadExactly(header);
        long dataStart = 8 + (long)headerLen;
        long dataSize = size - dataStart;
        // Checked up front: JsonDocument accepts some invalid UTF-8 inside strings and only fails on GetString.
        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new InvalidModelFileException(path, "header is not valid UTF-8 (not a safetensors file?)");
        if (header[0] != (byte)'{')
            throw new InvalidModelFileException(path, "header does not start with '{' (not a safetensors file?)");

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new InvalidModelFileException(path, "header is not valid JSON: " + MessageText.OneLine(e.Message), e);
        }

        using (doc)
        {
            try
            {
                return Interpret(path, doc, size, dataStart, dataSize);
            }
            catch (InvalidOperationException e)
            {
                // JsonElement.GetString/Name throw this for escapes that decode to lone UTF-16 surrogates ("\ud800").
                throw new InvalidModelFileException(path, "header has a string with an invalid UTF-16 escape: " + MessageText.OneLine(e.Message), e);
            }
        }
    }

    private static SafetensorsFile Interpret(string path, JsonDocument doc, long size, long dataStart, long dataSize)
    {
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new InvalidModelFileException(path, "header is not a JSON object");
        var tensors = new List<TensorInfo>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        // JSON allows repeated keys and JsonDocument keeps them all; the reference reader refuses them.
        var seen = new HashSet<string>(StringComparer.Ordinal);
        bool sawMetadata = false;
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                if (sawMetadata) throw new InvalidModelFileException(path, "__metadata__ appears twice in the header");
                sawMetadata = true;
                ReadMetadata(path, prop.Value, metadata);
                continue;
            }
            if (!seen.Add(prop.Name))
                throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(prop.Name)}' appears twice in the header");
            tensors.Add(ReadTensor(path, prop.Name, prop.Value, dataStart, dataSize));
        }
        ValidateLayout(path, tensors, dataStart, dataSize);
        return new SafetensorsFile(path, size, dataStart, tensors, metadata);
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidModelFileException(path, "__metadata__ is not a JSON object");
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new InvalidModelFileException(path, $"__metadata__ value '{MessageText.Quote(m.Name)}' is not a string (it is {m.Value.ValueKind.ToString().ToLowerInvariant()})");
            if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                throw new InvalidModelFileException(path, $"__metadata__ key '{MessageText.Quote(m.Name)}' appears twice");
        }
    }

    private static TensorInfo ReadTensor(string path, string tensorName, JsonElement e, long dataStart, long dataSize)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(tensorName)}': entry is not a JSON object");
        if (!e.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(tensorName)}': missing dtype");
        string dtypeName = dtypeEl.GetString()!;
        if (!TensorDTypeExtensions.TryParseSafetensorsName(dtypeName, out var dtype))
            throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(tensorName)}': unknown dtype '{MessageText.Quote(dtypeName)}'");
        if (!e.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(tensorName)}': missing shape");
        var shape = new long[shapeEl.GetArrayLength()];
        int i = 0;
        long count = 1;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(tensorName)}': shape entry {MessageText.Quote(d.GetRawText())} is not a non-negative integer");
            shape[i++] = dim;
            count = dim == 0 ? 0 : (count > long.MaxValue / dim ? -1 : count * dim);
            if (count < 0) throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(tensorName)}': shape overflows");
        }
        if (!e.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(tensorName)}': data_offsets must be [begin, end]");
        var begin = offEl[0];
        var end = offEl[1];
        if (begin.ValueKind != JsonValueKind.Number || !begin.TryGetInt64(out long b) || b < 0
            || end.ValueKind != JsonValueKind.Number || !end.TryGetInt64(out long en) || en < b)
            throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(tensorName)}': data_offsets {MessageText.Quote(offEl.GetRawText())} are not valid");
        if (en > dataSize)
            throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(tensorName)}': data_offsets [{b}, {en}] run past the end of the data ({dataSize} bytes; file truncated?)");
        long expected = count > long.MaxValue / dtype.ElementSize() ? -1 : count * dtype.ElementSize();
        if (expected != en - b)
            throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(tensorName)}': {dtypeName} {string.Join('x', shape)} needs {expected} bytes but data_offsets span {en - b}");
        return new TensorInfo(tensorName, dtype, shape) { DataOffset = dataStart + b, TypeName = dtype.SafetensorsName() };
    }

    /// <summary>Tensors must tile the data section exactly: no gaps, no overlap, nothing after the last tensor.</summary>
    private static void ValidateLayout(string path, List<TensorInfo> tensors, long dataStart, long dataSize)
    {
        if (tensors.Count == 0 && dataSize > 0)
            throw new InvalidModelFileException(path, $"{dataSize} bytes of data but the header lists no tensors");
        var byStart = tensors.OrderBy(t => t.DataOffset).ThenBy(t => t.ByteLength).ToList();
        long cursor = dataStart;
        foreach (var t in byStart)
        {
            if (t.DataOffset < cursor)
                throw new InvalidModelFileException(path, $"tensor '{MessageText.Quote(t.Name)}' overlaps the previous tensor's data");
            if (t.DataOffset > cursor)
                throw new InvalidModelFileException(path, $"gap of {t.DataOffset - cursor} bytes before tensor '{MessageText.Quote(t.Name)}' (data is not contiguous)");
            cursor += t.ByteLength;
        }
        if (cursor != dataStart + dataSize)
            throw new InvalidModelFileException(path, $"{dataStart + dataSize - cursor} bytes after the last tensor's data are not described by the header");
    }

    public void ReadTensorData(TensorInfo tensor, Span<byte> destination) => _data.Read(tensor, destination);

    public void Dispose() => _data.Dispose();
}
