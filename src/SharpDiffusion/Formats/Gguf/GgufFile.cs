using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace SharpDiffusion.Formats.Gguf;

/// <summary>
/// A GGUF file (ggml's container, used by llama.cpp and stable-diffusion.cpp), versions 2 and 3, little-endian:
/// magic "GGUF", version, tensor count, key/value count, key/values, tensor infos, padding to the alignment,
/// then tensor data. Opening reads and validates the header only. Shapes are reported in torch order
/// (GGUF lists dimensions innermost first); quantized tensors have <see cref="TensorDType.Quantized"/> and
/// <see cref="TensorInfo.TypeName"/> = the ggml type name, and their data is returned as stored.
/// </summary>
public sealed class GgufFile : IModelFile
{
    public const uint DefaultAlignment = 32;
    public const string AlignmentKey = "general.alignment";

    /// <summary>ggml supports at most four dimensions.</summary>
    public const int MaxDimensions = 4;

    /// <summary>Arrays up to this many scalar elements are shown in full in <see cref="Metadata"/>; longer ones summarised.</summary>
    public const int MaxArrayElementsShown = 16;

    private const int MaxKeyBytes = 1 << 16;
    private const int MaxStringValueBytes = 16 << 20;
    private const int MaxTensorNameBytes = 1 << 12;
    private const int MaxArrayNesting = 8;

    private static readonly byte[] Magic = "GGUF"u8.ToArray();

    private readonly ContiguousTensorData _data;

    private GgufFile(string path, long size, uint version, uint alignment, long dataStart,
        List<TensorInfo> tensors, Dictionary<string, string> metadata, Dictionary<string, GgmlType> ggmlTypes)
    {
        Path = path;
        SizeBytes = size;
        Version = version;
        Alignment = alignment;
        DataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
        _ggmlTypes = ggmlTypes;
        _data = new ContiguousTensorData(path, size, dataStart, checkSizeOnOpen: false);
    }

    private readonly Dictionary<string, GgmlType> _ggmlTypes;

    public string Path { get; }
    public ModelFormat Format => ModelFormat.Gguf;
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>Every key/value: numbers in invariant culture, bools true/false, strings raw, short arrays as JSON, long ones as "[array of N type]".</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public long SizeBytes { get; }

    /// <summary>The GGUF version (2 or 3).</summary>
    public uint Version { get; }

    /// <summary>Alignment of the data section and of each tensor's offset (<c>general.alignment</c>, default 32).</summary>
    public uint Alignment { get; }

    /// <summary>Absolute file offset of the data section.</summary>
    public long DataStart { get; }

    /// <summary>The ggml type a tensor of this file is stored as.</summary>
    public GgmlType GetGgmlType(TensorInfo tensor) =>
        _ggmlTypes.TryGetValue(tensor.Name, out var t) ? t : throw new ArgumentException($"'{tensor.Name}' is not a tensor of {Path}", nameof(tensor));

    public static GgufFile Open(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidModelFileException(path, "cannot open: " + e.Message.ReplaceLineEndings(" "), e);
        }
        using (stream)
        {
            try
            {
                return Read(path, new GgufHeaderReader(stream, path));
            }
            catch (IOException e)
            {
                throw new InvalidModelFileException(path, "read error: " + e.Message.ReplaceLineEndings(" "), e);
            }
        }
    }

    private static GgufFile Read(string path, GgufHeaderReader r)
    {
        if (r.Length == 0) throw r.Fail("empty file");
        if (r.Length < 4) throw r.Fail($"truncated: {r.Length} bytes, too short for the GGUF magic");
        Span<byte> magic = stackalloc byte[4];
        for (int i = 0; i < 4; i++) magic[i] = r.ReadByte("magic");
        if (!magic.SequenceEqual(Magic)) throw r.Fail("not a GGUF file (the first four bytes are not \"GGUF\")");

        uint version = r.ReadUInt32("version");
        if (version == 1)
            throw r.Fail("GGUF version 1 (the 2023 pre-release layout) is not supported; convert the model again with a current tool");
        if (version != 2 && version != 3)
        {
            uint swapped = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(version);
            throw r.Fail(swapped is 2 or 3
                ? $"big-endian GGUF (version {swapped}) is not supported"
                : $"unsupported GGUF version {version} (2 and 3 are supported)");
        }

        // Minimum encoded sizes: a tensor info is name length + n_dims + type + offset; a key/value is key length + type + 1 byte.
        long tensorCount = r.ReadCount("tensor count", 8 + 4 + 4 + 8);
        long kvCount = r.ReadCount("key/value count", 8 + 4 + 1);

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        uint alignment = DefaultAlignment;
        for (long i = 0; i < kvCount; i++)
        {
            string key = r.ReadString($"key {i}", MaxKeyBytes);
            string quoted = GgufHeaderReader.Quote(key);
            uint rawType = r.ReadUInt32($"type of '{quoted}'");
            if (!Enum.IsDefined((GgufValueType)rawType)) throw r.Fail($"key '{quoted}' has unknown value type {rawType}");
            var type = (GgufValueType)rawType;
            if (key == AlignmentKey)
            {
                if (type != GgufValueType.UInt32) throw r.Fail($"{AlignmentKey} must be a uint32, not {TypeName(type)}");
                alignment = r.ReadUInt32(AlignmentKey);
                if (alignment == 0 || (alignment & (alignment - 1)) != 0)
                    throw r.Fail($"{AlignmentKey} {alignment} is not a power of two");
                if (!metadata.TryAdd(key, alignment.ToString(CultureInfo.InvariantCulture)))
                    throw r.Fail($"key '{quoted}' appears twice");
                continue;
            }
            string value = ReadValue(r, type, quoted, 0);
            if (!metadata.TryAdd(key, value)) throw r.Fail($"key '{quoted}' appears twice");
        }

        var infos = new List<(string Name, long[] Dims, GgmlTypeTraits Traits, ulong Offset)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < tensorCount; i++)
        {
            string name = r.ReadString($"tensor {i} name", MaxTensorNameBytes);
            string quoted = GgufHeaderReader.Quote(name);
            if (!names.Add(name)) throw r.Fail($"tensor '{quoted}' appears twice");
            uint nDims = r.ReadUInt32($"dimension count of '{quoted}'");
            if (nDims > MaxDimensions) throw r.Fail($"tensor '{quoted}' has {nDims} dimensions (ggml allows at most {MaxDimensions})");
            var dims = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong dim = r.ReadUInt64($"dimension {d} of '{quoted}'");
                if (dim > long.MaxValue) throw r.Fail($"tensor '{quoted}' dimension {d} is {dim}, out of range");
                dims[d] = (long)dim;
            }
            uint rawType = r.ReadUInt32($"type of '{quoted}'");
            if (!GgmlTypeTraits.TryGet(rawType, out var traits)) throw r.Fail($"tensor '{quoted}': {GgmlTypeTraits.DescribeUnknown(rawType)}");
            ulong offset = r.ReadUInt64($"offset of '{quoted}'");
            infos.Add((name, dims, traits, offset));
        }

        long headerEnd = r.Position;
        long dataStart = AlignUp(headerEnd, alignment);
        if (infos.Count > 0 && dataStart > r.Length)
            throw r.Fail($"truncated: the data section would start at byte {dataStart}, the file has {r.Length}");
        long dataSize = Math.Max(0, r.Length - dataStart);

        var tensors = new List<TensorInfo>(infos.Count);
        var ggmlTypes = new Dictionary<string, GgmlType>(StringComparer.Ordinal);
        foreach (var (name, dims, traits, offset) in infos)
        {
            string quoted = GgufHeaderReader.Quote(name);
            long bytes = TensorBytes(dims, traits);
            if (bytes == -2)
                throw r.Fail($"tensor '{quoted}': row of {(dims.Length == 0 ? 1 : dims[0])} elements is not a whole number of {traits.Name} blocks ({traits.BlockSize} elements)");
            if (bytes < 0) throw r.Fail($"tensor '{quoted}': shape [{string.Join(", ", dims)}] overflows");
            if (offset % alignment != 0)
                throw r.Fail($"tensor '{quoted}': offset {offset} is not a multiple of the alignment {alignment}");
            if (offset > (ulong)dataSize || bytes > dataSize - (long)offset)
                throw r.Fail($"tensor '{quoted}': data [{offset}, {offset + (ulong)bytes}) runs past the end of the data ({dataSize} bytes; file truncated?)");
            var shape = new long[dims.Length];
            for (int d = 0; d < dims.Length; d++) shape[d] = dims[dims.Length - 1 - d];
            tensors.Add(new TensorInfo(name, traits.DType, shape)
            {
                ByteLength = bytes,
                DataOffset = dataStart + (long)offset,
                TypeName = traits.Name,
            });
            ggmlTypes[name] = traits.Type;
        }
        CheckNoOverlap(r, tensors);
        return new GgufFile(path, r.Length, version, alignment, dataStart, tensors, metadata, ggmlTypes);
    }

    private static void CheckNoOverlap(GgufHeaderReader r, List<TensorInfo> tensors)
    {
        TensorInfo? previous = null;
        foreach (var t in tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.DataOffset))
        {
            if (previous != null && t.DataOffset < previous.DataOffset + previous.ByteLength)
                throw r.Fail($"tensor '{GgufHeaderReader.Quote(t.Name)}' overlaps the data of '{GgufHeaderReader.Quote(previous.Name)}'");
            previous = t;
        }
    }

    /// <summary>Stored bytes: whole blocks per row times the other dimensions; -1 on overflow, -2 for a partial block.</summary>
    private static long TensorBytes(long[] dims, GgmlTypeTraits traits)
    {
        if (dims.Length == 0) return traits.BlockSize == 1 ? traits.TypeSize : -2;
        long row = traits.RowBytes(dims[0]);
        if (row < 0) return -2;
        long bytes = row;
        for (int i = 1; i < dims.Length; i++)
        {
            if (dims[i] != 0 && bytes > long.MaxValue / dims[i]) return -1;
            bytes *= dims[i];
        }
        // ggml also refuses element counts that overflow int64 even when a zero dimension makes the bytes 0.
        long elements = 1;
        foreach (long d in dims)
        {
            if (d != 0 && elements > long.MaxValue / d) return -1;
            elements *= d;
        }
        return bytes;
    }

    private static long AlignUp(long position, uint alignment) => (position + alignment - 1) / alignment * alignment;

    private static string ReadValue(GgufHeaderReader r, GgufValueType type, string key, int depth)
    {
        var inv = CultureInfo.InvariantCulture;
        switch (type)
        {
            case GgufValueType.UInt8: return r.ReadByte(key).ToString(inv);
            case GgufValueType.Int8: return ((sbyte)r.ReadByte(key)).ToString(inv);
            case GgufValueType.UInt16: return r.ReadUInt16(key).ToString(inv);
            case GgufValueType.Int16: return ((short)r.ReadUInt16(key)).ToString(inv);
            case GgufValueType.UInt32: return r.ReadUInt32(key).ToString(inv);
            case GgufValueType.Int32: return ((int)r.ReadUInt32(key)).ToString(inv);
            case GgufValueType.UInt64: return r.ReadUInt64(key).ToString(inv);
            case GgufValueType.Int64: return ((long)r.ReadUInt64(key)).ToString(inv);
            case GgufValueType.Float32: return r.ReadSingle(key).ToString("R", inv);
            case GgufValueType.Float64: return r.ReadDouble(key).ToString("R", inv);
            case GgufValueType.Bool:
                byte b = r.ReadByte(key);
                if (b > 1) throw r.Fail($"'{key}': bool value {b} is neither 0 nor 1");
                return b == 1 ? "true" : "false";
            case GgufValueType.String: return r.ReadString($"'{key}' value", MaxStringValueBytes);
            case GgufValueType.Array: return ReadArray(r, key, depth);
            default: throw r.Fail($"'{key}' has unknown value type {(uint)type}");
        }
    }

    private static string ReadArray(GgufHeaderReader r, string key, int depth)
    {
        if (depth >= MaxArrayNesting) throw r.Fail($"'{key}': arrays nested more than {MaxArrayNesting} deep");
        uint rawType = r.ReadUInt32($"'{key}' array element type");
        if (!Enum.IsDefined((GgufValueType)rawType)) throw r.Fail($"'{key}': array of unknown value type {rawType}");
        var elementType = (GgufValueType)rawType;
        long count = r.ReadCount($"'{key}' array length", MinEncodedSize(elementType));

        if (count <= MaxArrayElementsShown && elementType != GgufValueType.Array)
        {
            var sb = new StringBuilder("[");
            for (long i = 0; i < count; i++)
            {
                if (i > 0) sb.Append(',');
                string item = ReadValue(r, elementType, key, depth + 1);
                sb.Append(elementType == GgufValueType.String ? JsonString(item) : item);
            }
            return sb.Append(']').ToString();
        }

        SkipArrayElements(r, elementType, count, key, depth + 1);
        return $"[array of {count} {TypeName(elementType)}]";
    }

    /// <summary>Walks past array elements without keeping them, still validating their structure.</summary>
    private static void SkipArrayElements(GgufHeaderReader r, GgufValueType type, long count, string key, int depth)
    {
        int fixedSize = FixedSize(type);
        if (fixedSize > 0)
        {
            if (type == GgufValueType.Bool)
            {
                for (long i = 0; i < count; i++) ReadValue(r, type, key, depth);
                return;
            }
            r.Skip(count * fixedSize);
            return;
        }
        for (long i = 0; i < count; i++)
        {
            if (type == GgufValueType.String) r.SkipString($"'{key}' element {i}");
            else ReadArray(r, key, depth);
        }
    }

    private static int FixedSize(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 => 8,
        _ => 0,
    };

    /// <summary>Smallest encoding of one value: strings have an 8-byte length, arrays a type and a length.</summary>
    private static int MinEncodedSize(GgufValueType type) => type switch
    {
        GgufValueType.String => 8,
        GgufValueType.Array => 12,
        _ => FixedSize(type),
    };

    public static string TypeName(GgufValueType type) => type switch
    {
        GgufValueType.Float32 => "float32",
        GgufValueType.Float64 => "float64",
        _ => type.ToString().ToLowerInvariant(),
    };

    private static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string JsonString(string s) => JsonSerializer.Serialize(s, JsonOptions);

    public void ReadTensorData(TensorInfo tensor, Span<byte> destination) => _data.Read(tensor, destination);

    public void Dispose() => _data.Dispose();
}
