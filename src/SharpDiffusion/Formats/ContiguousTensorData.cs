using Microsoft.Win32.SafeHandles;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Formats;

/// <summary>
/// The data section of a file whose tensors are stored contiguously at known offsets (safetensors, GGUF), read with
/// positional reads straight into the caller's buffer: one copy from the page cache, safe from several threads, and
/// a file that shrank since it was opened is a clean error (a memory map would keep every page read resident and
/// would kill the process with SIGBUS). The handle is opened on the first read, so header-only uses never hold it.
/// </summary>
internal sealed class ContiguousTensorData : IDisposable
{
    private readonly string _path;
    private readonly long _sizeBytes;
    private readonly long _dataStart;
    private readonly bool _checkSizeOnOpen;
    private readonly object _lock = new();
    private SafeFileHandle? _handle;
    private bool _disposed;

    /// <param name="checkSizeOnOpen">Refuse to read when the file's size is no longer <paramref name="sizeBytes"/>.</param>
    public ContiguousTensorData(string path, long sizeBytes, long dataStart, bool checkSizeOnOpen)
    {
        _path = path;
        _sizeBytes = sizeBytes;
        _dataStart = dataStart;
        _checkSizeOnOpen = checkSizeOnOpen;
    }

    public void Read(TensorInfo tensor, Span<byte> destination)
    {
        if (destination.Length != tensor.ByteLength)
            throw new ArgumentException($"destination holds {destination.Length} bytes, tensor '{tensor.Name}' has {tensor.ByteLength}", nameof(destination));
        if (tensor.ByteLength == 0) return;
        if (tensor.DataOffset < _dataStart || tensor.DataOffset > _sizeBytes - tensor.ByteLength)
            throw new ArgumentException($"tensor '{tensor.Name}' does not lie inside the data of {_path}", nameof(tensor));
        var handle = EnsureOpen();
        long offset = tensor.DataOffset;
        while (!destination.IsEmpty)
        {
            int read;
            try
            {
                read = RandomAccess.Read(handle, destination, offset);
            }
            catch (IOException e)
            {
                throw new InvalidModelFileException(_path, $"read error in tensor '{MessageText.Quote(tensor.Name)}': " + MessageText.OneLine(e.Message), e);
            }
            if (read == 0)
                throw new InvalidModelFileException(_path, $"file ends inside tensor '{MessageText.Quote(tensor.Name)}' (truncated since it was opened?)");
            destination = destination[read..];
            offset += read;
        }
    }

    private SafeFileHandle EnsureOpen()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_handle != null) return _handle;
            SafeFileHandle handle;
            try
            {
                // Tensors are mostly read in file order: the hint buys more read-ahead.
                handle = File.OpenHandle(_path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidModelFileException(_path, "cannot open: " + MessageText.OneLine(e.Message), e);
            }
            long length = RandomAccess.GetLength(handle);
            if (_checkSizeOnOpen && length != _sizeBytes)
            {
                handle.Dispose();
                throw new InvalidModelFileException(_path, $"file changed size since it was opened ({_sizeBytes} -> {length} bytes)");
            }
            return _handle = handle;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _handle?.Dispose();
            _handle = null;
            _disposed = true;
        }
    }
}
