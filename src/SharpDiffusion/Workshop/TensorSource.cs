using Microsoft.Win32.SafeHandles;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Workshop;

/// <summary>
/// Reads whole tensors from an open model one at a time. Contiguous safetensors data is read with positioned file
/// reads instead of the reader's memory map: mapped pages stay resident in this process until the map closes, so
/// streaming two multi-GB models through a map would grow the resident set to both models' size, while file reads
/// only pass through the page cache (which the kernel can drop).
/// </summary>
internal sealed class TensorSource : IDisposable
{
    private readonly SafeFileHandle? _handle;
    private readonly long _length;

    public TensorSource(IModelFile file)
    {
        File = file;
        if (file is SafetensorsFile)
        {
            try
            {
                _handle = System.IO.File.OpenHandle(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
                _length = RandomAccess.GetLength(_handle);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidModelFileException(file.Path, "cannot open: " + e.Message, e);
            }
        }
    }

    public IModelFile File { get; }

    public string Path => File.Path;

    public void Read(TensorInfo tensor, Span<byte> destination)
    {
        if (_handle == null || tensor.Strides != null || tensor.DataOffset < 0 || tensor.DataOffset > _length - tensor.ByteLength)
        {
            File.ReadTensorData(tensor, destination);
            return;
        }
        long offset = tensor.DataOffset;
        var remaining = destination[..checked((int)tensor.ByteLength)];
        while (!remaining.IsEmpty)
        {
            int read = RandomAccess.Read(_handle, remaining, offset);
            if (read == 0) throw new InvalidModelFileException(File.Path, $"tensor '{tensor.Name}' ends past the end of the file");
            offset += read;
            remaining = remaining[read..];
        }
    }

    public void Dispose()
    {
        _handle?.Dispose();
        File.Dispose();
    }
}
