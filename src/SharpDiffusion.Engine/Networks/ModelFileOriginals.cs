using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Networks;

/// <summary>
/// The model file a checkpoint was loaded from as the source of its original weights: a weight that still holds
/// exactly what the loader put there (the file's tensor, converted by <c>copy_</c> to the weight's dtype, compared
/// bit for bit) needs no copy before a LoRA changes it, and is restored by reading the file again. Reading the file
/// (in the page cache since loading) is cheaper than allocating and filling a copy of every changed
/// weight, which on a VM costs more for the fresh memory than for the copying. Weights that do not match (changed
/// since loading, a layout the file stores differently, a dtype torch cannot read) are left to the patcher's copies.
/// The file must not be modified in place while the model is in use.
/// </summary>
public sealed class ModelFileOriginals : IOriginalWeightSource, IDisposable
{
    // Converted values are compared in slices of this many elements, so the conversion buffer stays small.
    private const long CompareSliceElements = 1 << 20;

    private readonly IModelFile _file;
    private readonly Dictionary<string, TensorInfo> _tensors = new(StringComparer.Ordinal);
    private readonly StagingBuffer _reads = new();
    private readonly StagingBuffer _conversions = new();

    public ModelFileOriginals(IModelFile file)
    {
        _file = file;
        foreach (var info in file.Tensors) _tensors[info.Name] = info;
    }

    public bool CanRestore(string key, Tensor live)
    {
        if (Readable(key, live) is not { } info) return false;
        using var stored = Read(info);
        if (stored.dtype == live.dtype) return stored.bytes.SequenceEqual(live.bytes);

        // Convert as the loader did (copy_ into the weight's dtype), a slice at a time, and compare the bits.
        using var flatLive = live.view(-1);
        long count = flatLive.numel();
        for (long start = 0; start < count; start += CompareSliceElements)
        {
            long length = Math.Min(CompareSliceElements, count - start);
            using var storedSlice = stored.narrow(0, start, length);
            using var liveSlice = flatLive.narrow(0, start, length);
            using var converted = _conversions.Slice(live.dtype, new[] { length });
            converted.copy_(storedSlice);
            if (!converted.bytes.SequenceEqual(liveSlice.bytes)) return false;
        }
        return true;
    }

    public void Restore(string key, Tensor live)
    {
        var info = Readable(key, live) ?? throw new InvalidOperationException($"{_file.Path}: {key} cannot be restored from the file");
        if (info.DType.ToScalarType() == live.dtype)
        {
            _file.ReadTensorData(info, live.bytes);
            return;
        }
        using var stored = Read(info);
        using var shaped = stored.view(live.shape);
        live.copy_(shaped);
    }

    /// <summary>The file's record for <paramref name="key"/> when the weight can be compared with it: CPU, contiguous, same shape, a torch float dtype.</summary>
    private TensorInfo? Readable(string key, Tensor live)
    {
        if (!_tensors.TryGetValue(key, out var info)) return null;
        if (live.device_type != DeviceType.CPU || !live.is_contiguous() || !info.Shape.SequenceEqual(live.shape)) return null;
        if (info.DType is not (TensorDType.F32 or TensorDType.F16 or TensorDType.BF16 or TensorDType.F64)) return null;
        if (!live.is_floating_point() || info.ElementCount == 0 || info.ByteLength > int.MaxValue || live.NumberOfElements * live.ElementSize > int.MaxValue) return null;
        return info;
    }

    /// <summary>The file's tensor as a flat view of a reused buffer (valid until the next read).</summary>
    private Tensor Read(TensorInfo info)
    {
        var view = _reads.Slice(info.DType.ToScalarType(), new[] { info.ElementCount });
        _file.ReadTensorData(info, view.bytes);
        return view;
    }

    /// <summary>Frees the read and conversion buffers (the file itself belongs to the checkpoint).</summary>
    public void Dispose()
    {
        _reads.Dispose();
        _conversions.Dispose();
    }
}
