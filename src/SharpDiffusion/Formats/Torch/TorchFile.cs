using System.IO.MemoryMappedFiles;
using SharpDiffusion.Formats.Pickle;

namespace SharpDiffusion.Formats.Torch;

/// <summary>
/// A PyTorch file (.ckpt .pt .pth .bin) written by torch.save, zip or legacy format, detected by content. The
/// pickle is interpreted by <see cref="PickleMachine"/>, which builds plain data only and refuses any global
/// outside its allow-list, so nothing in the file is ever executed. Tensor bytes are read on demand from a
/// memory map (deflated zip members are inflated when read).
/// </summary>
public sealed class TorchFile : IModelFile
{
    private readonly Dictionary<string, TorchStorageData> _storages;
    private readonly object _mapLock = new();
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;

    private TorchFile(string path, ModelFormat format, long size, object? root, List<TensorInfo> tensors,
        Dictionary<string, string> metadata, Dictionary<string, TorchStorageData> storages)
    {
        Path = path;
        Format = format;
        SizeBytes = size;
        Root = root;
        Tensors = tensors;
        Metadata = metadata;
        _storages = storages;
    }

    public string Path { get; }
    public ModelFormat Format { get; }
    public IReadOnlyList<TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public long SizeBytes { get; }

    /// <summary>
    /// The unpickled object tree (see <see cref="PickleValues"/> for how Python values appear), for callers that
    /// need structure beyond the flattened names; tensors in it are <see cref="PickledTensor"/>s.
    /// </summary>
    public object? Root { get; }

    public static TorchFile Open(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidModelFileException(path, "cannot open: " + e.Message, e);
        }
        using (stream)
        {
            long size = stream.Length;
            if (size == 0) throw new InvalidModelFileException(path, "empty file");
            try
            {
                bool zip = IsZip(stream);
                var (root, _, storages) = zip ? TorchZipReader.Read(stream) : TorchLegacyReader.Read(stream);
                var flat = TorchObjectFlattener.Flatten(root);
                var tensors = new List<TensorInfo>(flat.Tensors.Count);
                foreach (var (name, t) in flat.Tensors) tensors.Add(Describe(name, t, storages));
                return new TorchFile(path, zip ? ModelFormat.TorchZip : ModelFormat.TorchLegacy, size, root, tensors, flat.Metadata, storages);
            }
            catch (PickleFormatException e)
            {
                throw new InvalidModelFileException(path, e.Message, e);
            }
            catch (EndOfStreamException e)
            {
                throw new InvalidModelFileException(path, "truncated file", e);
            }
            catch (IOException e)
            {
                throw new InvalidModelFileException(path, "read error: " + e.Message, e);
            }
        }
    }

    private static bool IsZip(FileStream stream)
    {
        Span<byte> head = stackalloc byte[4];
        stream.Position = 0;
        int n = stream.ReadAtLeast(head, 4, throwOnEndOfStream: false);
        return n == 4 && head.SequenceEqual("PK\x03\x04"u8);
    }

    /// <summary>Checks the view against its storage and describes it (offsets in bytes, strides only when not contiguous).</summary>
    private static TensorInfo Describe(string name, PickledTensor t, Dictionary<string, TorchStorageData> storages)
    {
        var storage = t.Storage;
        if (!TorchStorageTypes.TryGetDType(storage.TypeName, out var storageDType))
            throw new PickleFormatException($"tensor '{name}': unknown storage type {storage.TypeName}");
        var dtype = storageDType;
        string typeName = storage.TypeName;
        if (t.DTypeName is { } explicitDType)
        {
            // _rebuild_tensor_v3: an explicit dtype (float8 ...) over the storage's bytes.
            if (!TorchStorageTypes.TryGetTorchDType(explicitDType, out dtype))
                throw new PickleFormatException($"tensor '{name}': dtype torch.{explicitDType} is not supported");
            typeName = $"{storage.TypeName}({explicitDType})";
        }
        if (!storages.TryGetValue(storage.Key, out var data))
            throw new PickleFormatException($"tensor '{name}': storage '{storage.Key}' has no data");
        if (t.StorageOffset < 0) throw new PickleFormatException($"tensor '{name}': negative storage offset");
        long count = 1;
        long lastElement = t.StorageOffset;
        for (int d = 0; d < t.Size.Length; d++)
        {
            long dim = t.Size[d], stride = t.Stride[d];
            if (dim < 0 || stride < 0) throw new PickleFormatException($"tensor '{name}': negative size or stride");
            if (dim == 0) { count = 0; continue; }
            if (count > long.MaxValue / dim || (dim - 1) > 0 && stride > (long.MaxValue / 16 - lastElement) / (dim - 1))
                throw new PickleFormatException($"tensor '{name}': size overflows");
            count *= dim;
            lastElement += (dim - 1) * stride;
        }
        int elementSize = dtype.ElementSize();
        long viewStart = storage.ViewElementOffset * storageDType.ElementSize();
        long viewBytes = storage.ElementCount * storageDType.ElementSize();
        if (count > 0 && (lastElement + 1) * elementSize > viewBytes)
            throw new PickleFormatException($"tensor '{name}' {ShapeText(t.Size)} at offset {t.StorageOffset} needs {lastElement + 1} elements but storage '{storage.Key}' holds {viewBytes / elementSize} (storage too short)");
        if (count > 0 && viewStart + (lastElement + 1) * elementSize > data.ByteLength)
            throw new PickleFormatException($"tensor '{name}': storage '{storage.Key}' is too short");
        return new TensorInfo(name, dtype, t.Size)
        {
            DataOffset = viewStart + t.StorageOffset * elementSize,
            Strides = count == 0 || IsContiguous(t.Size, t.Stride) ? null : t.Stride,
            StorageKey = storage.Key,
            TypeName = typeName,
        };
    }

    private static bool IsContiguous(long[] size, long[] stride)
    {
        long expected = 1;
        for (int d = size.Length - 1; d >= 0; d--)
        {
            if (size[d] != 1 && stride[d] != expected) return false;
            expected *= size[d];
        }
        return true;
    }

    private static string ShapeText(long[] shape) => "[" + string.Join(", ", shape) + "]";

    public void ReadTensorData(TensorInfo tensor, Span<byte> destination)
    {
        if (destination.Length != tensor.ByteLength)
            throw new ArgumentException($"destination holds {destination.Length} bytes, tensor '{tensor.Name}' has {tensor.ByteLength}", nameof(destination));
        if (tensor.ByteLength == 0) return;
        if (tensor.StorageKey is null || !_storages.TryGetValue(tensor.StorageKey, out var storage))
            throw new ArgumentException($"tensor '{tensor.Name}' does not belong to {Path}", nameof(tensor));
        int elementSize = tensor.DType.ElementSize();
        long extent = tensor.DataOffset + Extent(tensor) * elementSize;
        if (tensor.DataOffset < 0 || extent > storage.ByteLength)
            throw new ArgumentException($"tensor '{tensor.Name}' lies outside its storage", nameof(tensor));

        if (storage.DeflatedEntry is { } entry)
        {
            byte[] bytes;
            using (var file = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read))
            {
                try
                {
                    bytes = TorchZipReader.ReadMember(file, entry, long.MaxValue);
                }
                catch (PickleFormatException e)
                {
                    throw new InvalidModelFileException(Path, e.Message, e);
                }
            }
            unsafe
            {
                fixed (byte* p = bytes) CopyOut(p + tensor.DataOffset, tensor, elementSize, destination);
            }
            return;
        }

        var view = EnsureMapped();
        unsafe
        {
            byte* basePtr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            try
            {
                CopyOut(basePtr + view.PointerOffset + storage.FileOffset + tensor.DataOffset, tensor, elementSize, destination);
            }
            finally
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
            }
        }
    }

    /// <summary>Elements spanned from element 0 to the last element of the view, inclusive.</summary>
    private static long Extent(TensorInfo tensor)
    {
        if (tensor.Strides is not { } strides) return tensor.ElementCount;
        if (strides.Length != tensor.Shape.Length) throw new ArgumentException($"tensor '{tensor.Name}' has strides of the wrong rank");
        long last = 0;
        for (int d = 0; d < strides.Length; d++)
        {
            if (strides[d] < 0) throw new ArgumentException($"tensor '{tensor.Name}' has a negative stride");
            last += (tensor.Shape[d] - 1) * strides[d];
        }
        return last + 1;
    }

    private static unsafe void CopyOut(byte* source, TensorInfo tensor, int elementSize, Span<byte> destination)
    {
        if (tensor.Strides is null) new ReadOnlySpan<byte>(source, destination.Length).CopyTo(destination);
        else StridedCopy.Copy(source, tensor.Shape, tensor.Strides, elementSize, destination);
    }

    private MemoryMappedViewAccessor EnsureMapped()
    {
        lock (_mapLock)
        {
            if (_view != null) return _view;
            _map = MemoryMappedFile.CreateFromFile(Path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return _view;
        }
    }

    public void Dispose()
    {
        lock (_mapLock)
        {
            _view?.Dispose();
            _map?.Dispose();
            _view = null;
            _map = null;
        }
    }
}
