using System.Text;
using SharpDiffusion.Formats.Gguf;

namespace SharpDiffusion.Tests.Formats.Gguf;

/// <summary>
/// Builds GGUF files in memory for tests, following ggml's docs/gguf.md: header, key/values, tensor infos
/// (dimensions innermost first), padding to the alignment, data (each tensor padded to the alignment).
/// Values can be written raw so tests can produce malformed files too.
/// </summary>
internal sealed class GgufTestWriter
{
    private readonly List<Action<BinaryWriter>> _keyValues = [];
    private readonly List<(string Name, long[] TorchShape, uint Type, byte[] Data, ulong? Offset)> _tensors = [];

    public uint Version { get; set; } = 3;
    public uint Alignment { get; private set; } = GgufFile.DefaultAlignment;

    /// <summary>Overrides the counts written in the header (to produce inconsistent files).</summary>
    public ulong? TensorCountOverride { get; set; }
    public ulong? KeyValueCountOverride { get; set; }

    public GgufTestWriter SetAlignment(uint alignment)
    {
        Alignment = alignment;
        return UInt32(GgufFile.AlignmentKey, alignment);
    }

    public GgufTestWriter Raw(string key, GgufValueType type, Action<BinaryWriter> writeValue)
    {
        _keyValues.Add(w =>
        {
            WriteString(w, key);
            w.Write((uint)type);
            writeValue(w);
        });
        return this;
    }

    public GgufTestWriter String(string key, string value) => Raw(key, GgufValueType.String, w => WriteString(w, value));
    public GgufTestWriter UInt8(string key, byte value) => Raw(key, GgufValueType.UInt8, w => w.Write(value));
    public GgufTestWriter Int8(string key, sbyte value) => Raw(key, GgufValueType.Int8, w => w.Write(value));
    public GgufTestWriter UInt16(string key, ushort value) => Raw(key, GgufValueType.UInt16, w => w.Write(value));
    public GgufTestWriter Int16(string key, short value) => Raw(key, GgufValueType.Int16, w => w.Write(value));
    public GgufTestWriter UInt32(string key, uint value) => Raw(key, GgufValueType.UInt32, w => w.Write(value));
    public GgufTestWriter Int32(string key, int value) => Raw(key, GgufValueType.Int32, w => w.Write(value));
    public GgufTestWriter UInt64(string key, ulong value) => Raw(key, GgufValueType.UInt64, w => w.Write(value));
    public GgufTestWriter Int64(string key, long value) => Raw(key, GgufValueType.Int64, w => w.Write(value));
    public GgufTestWriter Float32(string key, float value) => Raw(key, GgufValueType.Float32, w => w.Write(value));
    public GgufTestWriter Float64(string key, double value) => Raw(key, GgufValueType.Float64, w => w.Write(value));
    public GgufTestWriter Bool(string key, bool value) => Raw(key, GgufValueType.Bool, w => w.Write(value ? (byte)1 : (byte)0));

    public GgufTestWriter Array(string key, GgufValueType elementType, long count, Action<BinaryWriter> writeElements) =>
        Raw(key, GgufValueType.Array, w => WriteArrayBody(w, elementType, count, writeElements));

    public GgufTestWriter StringArray(string key, IReadOnlyList<string> values) =>
        Array(key, GgufValueType.String, values.Count, w => { foreach (var v in values) WriteString(w, v); });

    public GgufTestWriter Int32Array(string key, params int[] values) =>
        Array(key, GgufValueType.Int32, values.Length, w => { foreach (var v in values) w.Write(v); });

    public static void WriteArrayBody(BinaryWriter w, GgufValueType elementType, long count, Action<BinaryWriter> writeElements)
    {
        w.Write((uint)elementType);
        w.Write((ulong)count);
        writeElements(w);
    }

    /// <summary>Adds a tensor given in torch order; <paramref name="data"/> defaults to a recognisable pattern of the right length.</summary>
    public GgufTestWriter Tensor(string name, GgmlType type, long[] torchShape, byte[]? data = null, ulong? offset = null) =>
        Tensor(name, (uint)type, torchShape, data ?? Pattern(ByteLength(type, torchShape), name.Length), offset);

    public GgufTestWriter Tensor(string name, uint type, long[] torchShape, byte[] data, ulong? offset = null)
    {
        _tensors.Add((name, torchShape, type, data, offset));
        return this;
    }

    public static long ByteLength(GgmlType type, long[] torchShape)
    {
        var t = GgmlTypeTraits.Get(type);
        long rows = 1;
        for (int i = 0; i < torchShape.Length - 1; i++) rows *= torchShape[i];
        long inner = torchShape.Length == 0 ? 1 : torchShape[^1];
        return inner / t.BlockSize * t.TypeSize * rows;
    }

    public static byte[] Pattern(long length, int seed)
    {
        var bytes = new byte[length];
        for (long i = 0; i < length; i++) bytes[i] = (byte)(i * 31 + seed);
        return bytes;
    }

    public static void WriteString(BinaryWriter w, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    public byte[] Build()
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write("GGUF"u8);
        w.Write(Version);
        w.Write(TensorCountOverride ?? (ulong)_tensors.Count);
        w.Write(KeyValueCountOverride ?? (ulong)_keyValues.Count);
        foreach (var kv in _keyValues) kv(w);

        var offsets = new List<ulong>();
        ulong next = 0;
        foreach (var t in _tensors)
        {
            ulong offset = t.Offset ?? next;
            offsets.Add(offset);
            next = Align(Math.Max(next, offset + (ulong)t.Data.Length));
        }
        for (int i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            WriteString(w, t.Name);
            w.Write((uint)t.TorchShape.Length);
            for (int d = t.TorchShape.Length - 1; d >= 0; d--) w.Write((ulong)t.TorchShape[d]);
            w.Write(t.Type);
            w.Write(offsets[i]);
        }
        w.Flush();
        long dataStart = (long)Align((ulong)ms.Length);
        for (int i = 0; i < _tensors.Count; i++)
        {
            long end = dataStart + (long)offsets[i] + _tensors[i].Data.Length;
            if (ms.Length < end) ms.SetLength(end);
            ms.Position = dataStart + (long)offsets[i];
            ms.Write(_tensors[i].Data);
        }
        if (_tensors.Count > 0) ms.SetLength((long)Align((ulong)ms.Length));
        return ms.ToArray();
    }

    public string Write(TempDir dir, string name = "model.gguf")
    {
        string path = dir.File(name);
        File.WriteAllBytes(path, Build());
        return path;
    }

    private ulong Align(ulong x) => (x + Alignment - 1) / Alignment * Alignment;
}
