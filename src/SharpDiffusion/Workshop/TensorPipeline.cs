using System.Collections.Concurrent;

namespace SharpDiffusion.Workshop;

/// <summary>
/// Produces the output bytes of tensors 0..count-1 on a background thread (reading the inputs and computing), a few
/// tensors ahead of the writer that takes them in order with <see cref="Next"/>: reading and merging overlap writing.
/// Output buffers come from a fixed pool, so at most <c>poolSize</c> tensors' outputs exist at once. An exception in
/// the producer surfaces from <see cref="Next"/> as itself; disposing stops the producer.
/// </summary>
internal sealed class TensorPipeline : IDisposable
{
    private readonly BlockingCollection<ByteBuffer> _free = new();
    private readonly BlockingCollection<(ByteBuffer Buffer, ReadOnlyMemory<byte> Data)> _ready = new();
    private readonly CancellationTokenSource _cancel = new();
    private readonly Task _producer;
    private ByteBuffer? _held;

    /// <param name="produce">Fills the given buffer (or returns other memory) with tensor <c>i</c>'s output bytes.</param>
    /// <param name="bufferBytes">Each pool buffer is allocated at this size up front (the largest output tensor).</param>
    public TensorPipeline(int count, int poolSize, long bufferBytes, Func<int, ByteBuffer, ReadOnlyMemory<byte>> produce)
    {
        for (int i = 0; i < poolSize; i++)
        {
            var buffer = new ByteBuffer();
            buffer.Reserve(bufferBytes);
            _free.Add(buffer);
        }
        var token = _cancel.Token;
        _producer = Task.Factory.StartNew(() =>
        {
            try
            {
                for (int i = 0; i < count; i++)
                {
                    var buffer = _free.Take(token);
                    _ready.Add((buffer, produce(i, buffer)), token);
                }
            }
            finally
            {
                _ready.CompleteAdding();
            }
        }, token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>The next tensor's output bytes, in order; valid until the following call.</summary>
    public ReadOnlyMemory<byte> Next()
    {
        if (_held != null)
        {
            _free.Add(_held);
            _held = null;
        }
        if (_ready.TryTake(out var item, Timeout.Infinite))
        {
            _held = item.Buffer;
            return item.Data;
        }
        _producer.GetAwaiter().GetResult(); // the producer stopped early: rethrow its exception as itself
        throw new InvalidOperationException("the writer asked for more tensors than were planned");
    }

    public void Dispose()
    {
        _cancel.Cancel();
        try
        {
            _producer.Wait();
        }
        catch (AggregateException)
        {
            // Stopped by the cancellation above, or failed after the writer gave up: the writer's error is the one reported.
        }
        _cancel.Dispose();
        _free.Dispose();
        _ready.Dispose();
    }
}
