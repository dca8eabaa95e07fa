using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Weights;

/// <summary>
/// CPU buffers (one per element type) reused for every tensor read from a file before it is converted or compared:
/// each grows to the largest tensor and is faulted in once, instead of once per tensor.
/// </summary>
internal sealed class StagingBuffer : IDisposable
{
    private readonly Dictionary<ScalarType, Tensor> _buffers = new();

    /// <summary>A contiguous tensor of <paramref name="dtype"/> and <paramref name="shape"/> over the start of the buffer.</summary>
    public Tensor Slice(ScalarType dtype, long[] shape)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (!_buffers.TryGetValue(dtype, out var buffer) || buffer.shape[0] < count)
        {
            buffer?.Dispose();
            buffer = empty(count, dtype);
            _buffers[dtype] = buffer;
        }
        using var region = buffer.narrow(0, 0, count);
        return region.view(shape);
    }

    public void Dispose()
    {
        foreach (var buffer in _buffers.Values) buffer.Dispose();
        _buffers.Clear();
    }
}
