namespace SharpDiffusion.Workshop;

/// <summary>A reusable buffer that grows to the largest tensor seen, so streaming a model allocates a few arrays, not one per tensor.</summary>
internal sealed class ByteBuffer
{
    private byte[] _data = [];

    /// <summary>Allocates the largest size needed up front, so growing never leaves smaller arrays for the GC to find.</summary>
    public void Reserve(long length) => Get(length);

    public Memory<byte> Get(long length)
    {
        if (length > Array.MaxLength) throw new WorkshopException($"a tensor of {length} bytes is larger than one buffer can hold");
        if (_data.Length < length)
        {
            _data = [];
            _data = GC.AllocateUninitializedArray<byte>((int)length);
        }
        return _data.AsMemory(0, (int)length);
    }
}
