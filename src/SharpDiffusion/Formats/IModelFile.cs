namespace SharpDiffusion.Formats;

/// <summary>
/// A model file opened for reading: the tensor list and metadata are available at once (header-only read);
/// tensor bytes are read on demand, straight into the caller's buffer (positional reads for safetensors; a memory map
/// for uncompressed torch zip members).
/// </summary>
public interface IModelFile : IDisposable
{
    /// <summary>The file or folder that was opened.</summary>
    string Path { get; }

    ModelFormat Format { get; }

    /// <summary>Tensors in file order.</summary>
    IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>
    /// Text metadata: safetensors <c>__metadata__</c>, GGUF key/values, or the scalar leaves of a pickle's
    /// object tree (dotted paths, e.g. <c>step</c>, <c>string_to_token.*</c>, <c>layer_structure</c>).
    /// </summary>
    IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Total bytes on disk (all files of a folder model).</summary>
    long SizeBytes { get; }

    /// <summary>
    /// Copies the tensor's elements into <paramref name="destination"/> as a row-major contiguous little-endian
    /// array of <see cref="TensorInfo.ByteLength"/> bytes (views are materialised). Safe to call from several threads
    /// at once (the engine's loader reads on two).
    /// </summary>
    void ReadTensorData(TensorInfo tensor, Span<byte> destination);
}
