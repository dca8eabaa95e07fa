namespace SharpDiffusion.Formats.Pickle;

/// <summary>
/// A tensor as <c>torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, ...)</c> describes it:
/// a strided view (offsets and strides in elements) of a storage whose bytes stay in the file.
/// </summary>
public sealed class PickledTensor
{
    public PickledTensor(PickledStorage storage, long storageOffset, long[] size, long[] stride, bool requiresGrad)
    {
        Storage = storage;
        StorageOffset = storageOffset;
        Size = size;
        Stride = stride;
        RequiresGrad = requiresGrad;
    }

    public PickledStorage Storage { get; }
    public long StorageOffset { get; }
    public long[] Size { get; }
    public long[] Stride { get; }
    public bool RequiresGrad { get; }

    /// <summary>The explicit torch dtype name of <c>_rebuild_tensor_v3</c> ("float8_e4m3fn"); null when the storage type decides.</summary>
    public string? DTypeName { get; init; }
}
