using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

/// <summary>The merge's read-ahead pipeline: outputs in order, at most the pool in flight, errors surfacing as themselves, no hang on early stop.</summary>
public sealed class TensorPipelineTests
{
    [Fact]
    public void Outputs_arrive_in_order_with_their_bytes_and_the_producer_stays_within_the_pool()
    {
        int produced = 0, maxAhead = 0, consumed = 0;
        using var pipeline = new TensorPipeline(50, 3, 16, (i, buffer) =>
        {
            int ahead = Interlocked.Increment(ref produced) - Volatile.Read(ref consumed);
            InterlockedMax(ref maxAhead, ahead);
            var data = buffer.Get(i % 16 + 1);
            data.Span.Fill((byte)i);
            return data;
        });
        for (int i = 0; i < 50; i++)
        {
            var data = pipeline.Next();
            Assert.Equal(i % 16 + 1, data.Length);
            Assert.All(data.ToArray(), x => Assert.Equal((byte)i, x));
            Thread.Sleep(i % 5 == 0 ? 2 : 0); // let the producer run ahead now and then
            Interlocked.Increment(ref consumed);
        }
        Assert.InRange(maxAhead, 1, 3);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen) { }
    }

    [Fact]
    public void A_producer_error_reaches_the_writer_as_itself_after_the_tensors_before_it()
    {
        using var pipeline = new TensorPipeline(10, 2, 4, (i, buffer) =>
            i == 3 ? throw new WorkshopException($"tensor {i} cannot be read") : buffer.Get(4));
        for (int i = 0; i < 3; i++) Assert.Equal(4, pipeline.Next().Length);
        var e = Assert.Throws<WorkshopException>(() => pipeline.Next());
        Assert.Equal("tensor 3 cannot be read", e.Message);
    }

    [Fact]
    public async Task Disposing_before_all_tensors_are_taken_stops_the_producer()
    {
        int produced = 0;
        var pipeline = new TensorPipeline(1000, 2, 4, (_, buffer) =>
        {
            Interlocked.Increment(ref produced);
            return buffer.Get(4);
        });
        pipeline.Next();
        var dispose = Task.Run(pipeline.Dispose);
        Assert.Same(dispose, await Task.WhenAny(dispose, Task.Delay(TimeSpan.FromSeconds(10))));
        Assert.InRange(produced, 1, 4);
    }
}
