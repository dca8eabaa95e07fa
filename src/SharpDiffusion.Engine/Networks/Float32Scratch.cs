using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Networks;

/// <summary>
/// One float32 buffer reused for every weight-sized temporary of a run of patches (the delta of a bf16/fp16 weight),
/// grown to the largest size asked for: patching many weights then allocates once instead of once per weight.
/// </summary>
public sealed class Float32Scratch : IDisposable
{
    private Tensor? _buffer;

    /// <summary>A [rows, columns] float32 view of the buffer (contents undefined); dispose the view after use.</summary>
    public Tensor Matrix(long rows, long columns)
    {
        long needed = rows * columns;
        if (_buffer is null || _buffer.numel() < needed)
        {
            _buffer?.Dispose();
            _buffer = empty(needed, ScalarType.Float32);
        }
        using var used = _buffer.narrow(0, 0, needed);
        return used.view(rows, columns);
    }

    public void Dispose()
    {
        _buffer?.Dispose();
        _buffer = null;
    }
}
