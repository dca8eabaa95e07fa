namespace SharpDiffusion.Workshop;

/// <summary>Reports synchronously on the writing thread (Progress&lt;T&gt; would post to the thread pool and arrive late).</summary>
internal sealed class SyncProgress(Action<long> report) : IProgress<long>
{
    public void Report(long value) => report(value);
}
