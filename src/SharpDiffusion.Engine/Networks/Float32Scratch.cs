using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Networks;

/// <summary>
/// Float32 buffers reused for every weight-sized temporary of a run of patches (the delta of a bf16/fp16 weight and
/// the weight widened to float32), each grown to the largest size asked for: patching many weights then allocates
/// once instead of once per weight.
/// </summary>
public sealed class Float32Scratch : IDisposable
{
    private readonly Tensor?[] _buffers = new Tensor?[2];

    /// <summary>A [rows, columns] float32 view of buffer <paramref name="slot"/> (0 or 1; contents undefined); dispose the view after use.</summary>
    public Tensor Matrix(long rows, long columns, int slot = 0)
    {
        long needed = rows * columns;
        var buffer = _buffers[slot];
        if (buffer is null || buffer.numel() < needed)
        {
            buffer?.Dispose();
            _buffers[slot] = buffer = empty(needed, ScalarType.Float32);
        }
        using var used = buffer.narrow(0, 0, needed);
        return used.view(rows, columns);
    }

    public void Dispose()
    {
        for (int i = 0; i < _buffers.Length; i++)
        {
            _buffers[i]?.Dispose();
            _buffers[i] = null;
        }
    }
}
