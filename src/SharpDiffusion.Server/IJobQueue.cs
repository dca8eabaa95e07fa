using System.Collections.Concurrent;
using System.Text.Json;

namespace SharpDiffusion.Server;

/// <summary>
/// Where the routes put jobs and find them again: <see cref="JobQueue"/> runs them in this process,
/// <see cref="RedisJobQueue"/> hands them to <c>sharpdiffusion worker</c> processes through a Redis stream.
/// </summary>
public interface IJobQueue : IAsyncDisposable
{
    /// <summary>Queues <paramref name="job"/> (<paramref name="request"/> is its request body); false when the queue is full (503).</summary>
    Task<bool> TryEnqueueAsync(ServerJob job, JsonElement request);

    /// <summary>The job with this id, queued, running or recently finished; null when unknown.</summary>
    Task<ServerJob?> FindAsync(string id);

    /// <summary>Cancels one job: a waiting job never runs, a running one stops after its current step. False when unknown.</summary>
    Task<bool> CancelAsync(string id);

    /// <summary>The running job A1111's progress/interrupt/skip act on (the oldest running one), or null when idle.</summary>
    Task<ServerJob?> CurrentAsync();
}

/// <summary>The jobs a queue can still be asked about: all unfinished ones and the last few hundred finished ones.</summary>
internal sealed class RecentJobs
{
    private const int FinishedJobsKept = 256;
    private readonly ConcurrentDictionary<string, ServerJob> _jobs = new();
    private readonly ConcurrentQueue<string> _finishedOrder = new();

    public void Add(ServerJob job) => _jobs[job.Id] = job;

    public ServerJob? Find(string id) => _jobs.GetValueOrDefault(id);

    public IEnumerable<ServerJob> Unfinished => _jobs.Values.Where(j => !j.Finished.IsCompleted);

    public void Finished(ServerJob job)
    {
        _finishedOrder.Enqueue(job.Id);
        while (_finishedOrder.Count > FinishedJobsKept && _finishedOrder.TryDequeue(out var old)) _jobs.TryRemove(old, out _);
    }
}
