namespace SharpDiffusion.Formats.Safetensors;

/// <summary>
/// One tensor for <see cref="SafetensorsWriter"/>: its description and a callback that streams exactly
/// <see cref="ByteLength"/> little-endian bytes, so a tool can write a large model tensor by tensor without
/// holding it all in memory.
/// </summary>
/// <param name="WriteData">Writes the tensor's row-major bytes to the given stream (any number of Write calls).</param>
public sealed record TensorToWrite(string Name, TensorDType DType, long[] Shape, Action<Stream> WriteData)
{
    /// <summary>Element count times element size; -1 when the shape is invalid (negative or overflowing).</summary>
    public long ByteLength => SafetensorsWriter.ComputeByteLength(DType, Shape);

    /// <summary>A tensor whose bytes are already in memory.</summary>
    public static TensorToWrite FromBytes(string name, TensorDType dtype, long[] shape, ReadOnlyMemory<byte> data) =>
        new(name, dtype, shape, stream => stream.Write(data.Span));

    /// <summary>A tensor copied from an open model file when written (one tensor in memory at a time).</summary>
    public static TensorToWrite FromModelFile(IModelFile file, TensorInfo tensor, string? newName = null) =>
        new(newName ?? tensor.Name, tensor.DType, tensor.Shape, stream =>
        {
            var buffer = new byte[checked((int)tensor.ByteLength)];
            file.ReadTensorData(tensor, buffer);
            stream.Write(buffer);
        });
}
