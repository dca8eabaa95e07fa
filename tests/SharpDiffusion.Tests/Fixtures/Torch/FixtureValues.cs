namespace SharpDiffusion.Tests.Fixtures.Torch;

/// <summary>A Python dict for fixtures (insertion-ordered); <see cref="Ordered"/> pickles it as collections.OrderedDict.</summary>
internal sealed class FixtureDict : List<KeyValuePair<object, object?>>
{
    public FixtureDict(bool ordered = false) => Ordered = ordered;

    public bool Ordered { get; }

    public void Add(object key, object? value) => Add(new KeyValuePair<object, object?>(key, value));
}

/// <summary>A Python tuple for fixtures.</summary>
internal sealed record FixtureTuple(params object?[] Items);

/// <summary>
/// A tensor view of a fixture storage: <c>_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())</c>,
/// or with <see cref="TorchDType"/> set <c>_rebuild_tensor_v3(..., torch.&lt;dtype&gt;)</c> as torch 2.x writes float8.
/// </summary>
internal sealed record FixtureTensor(string StorageKey, long Offset, long[] Shape, long[] Stride)
{
    public string? TorchDType { get; init; }

    /// <summary>Legacy files only: the persistent id's view metadata (view key, offset, size in elements).</summary>
    public (string Key, long Offset, long Size)? LegacyView { get; init; }
}

/// <summary>A numpy scalar (<c>numpy.core.multiarray.scalar(dtype(code), bytes)</c>), e.g. ("i8", 8 bytes).</summary>
internal sealed record FixtureNumpyScalar(string Code, byte[] Raw);

/// <summary>Pickle bytes inserted verbatim where a value goes (hostile fixtures); must push exactly one value.</summary>
internal sealed record FixtureRawPickle(byte[] Opcodes);

/// <summary>One storage: its torch type ("FloatStorage") and raw little-endian bytes.</summary>
internal sealed record FixtureStorage(string TypeName, int ElementSize, byte[] Data)
{
    public long ElementCount => Data.Length / ElementSize;

    public static FixtureStorage F32(params float[] values) => new("FloatStorage", 4, Bytes(values));
    public static FixtureStorage F64(params double[] values) => new("DoubleStorage", 8, Bytes(values));
    public static FixtureStorage I64(params long[] values) => new("LongStorage", 8, Bytes(values));
    public static FixtureStorage Untyped(params byte[] bytes) => new("UntypedStorage", 1, bytes);
    public static FixtureStorage F16(params float[] values) => new("HalfStorage", 2, Bytes(values.Select(v => (Half)v).ToArray()));

    /// <summary>bf16 = the upper half of the float32 bits (the values used are exact in bf16).</summary>
    public static FixtureStorage BF16(params float[] values) =>
        new("BFloat16Storage", 2, Bytes(values.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray()));

    private static byte[] Bytes<T>(T[] values) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
}
