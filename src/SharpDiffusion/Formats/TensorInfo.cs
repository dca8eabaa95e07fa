namespace SharpDiffusion.Formats;

/// <summary>
/// One tensor of a model file, described without reading its data: name, element type, shape and where the
/// bytes are. Data is read on demand through the owning <see cref="IModelFile"/>.
/// </summary>
public sealed record TensorInfo
{
    public TensorInfo(string name, TensorDType dtype, long[] shape)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        long count = 1;
        foreach (var d in shape) count *= d;
        ElementCount = count;
        ByteLength = count * dtype.ElementSize();
    }

    public string Name { get; init; }
    public TensorDType DType { get; init; }
    public long[] Shape { get; init; }
    public long ElementCount { get; }

    /// <summary>Bytes of the tensor when laid out contiguously (for quantized types: as stored).</summary>
    public long ByteLength { get; init; }

    /// <summary>Byte offset of element 0 inside <see cref="StorageKey"/>'s data (or the file, when that is null).</summary>
    public long DataOffset { get; init; }

    /// <summary>Element strides, when the stored tensor is a view that is not row-major contiguous; null otherwise.</summary>
    public long[]? Strides { get; init; }

    /// <summary>Reader-specific name of the storage holding the bytes (zip entry, pickle storage key, shard file).</summary>
    public string? StorageKey { get; init; }

    /// <summary>The type as the file spells it ("F16", "HalfStorage", "Q4_K"), for display.</summary>
    public string? TypeName { get; init; }

    public int Rank => Shape.Length;

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
