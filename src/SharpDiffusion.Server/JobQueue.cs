using System.Text.Json;
using System.Threading.Channels;

namespace SharpDiffusion.Server;

public enum JobState
{
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

/// <summary>What a finished job answers: the A1111 response body and its PNGs (also served by URL for /v2 jobs).</summary>
public sealed record JobResponse(object Body, IReadOnlyList<byte[]> Pngs);

/// <summary>
/// One request in the queue: its id, state, progress and, once finished, its response or error. With the Redis queue
/// the server holds a mirror of the job, kept up to date from what the worker writes to Redis.
/// </summary>
public sealed class ServerJob(string kind, ImageJob job, Func<ServerJob, ImageJobResult, JobResponse> respond, Action<ServerJob>? keepImages = null, string? id = null)
{
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Id { get; } = id ?? Guid.NewGuid().ToString("N");
    /// <summary>"txt2img" or "img2img".</summary>
    public string Kind { get; } = kind;
    public ImageJob Job { get; } = job;
    public JobControl Control { get; } = new();
    public DateTimeOffset CreatedAt { get; } = DateTimeOffset.UtcNow;
    public DateTimeOffset? StartedAt { get; internal set; }
    private volatile JobState _state;

    /// <summary>Written by the worker, read by request threads.</summary>
    public JobState State { get => _state; internal set => _state = value; }
    public ImageJobProgress? Progress { get; internal set; }
    /// <summary>The HTTP response body built from the result (A1111's txt2img/img2img response).</summary>
    public object? Response { get; private set; }
    /// <summary>The finished job's PNGs (empty before).</summary>
    public IReadOnlyList<byte[]> Pngs { get; private set; } = [];
    public Exception? Error { get; private set; }
    public Task Finished => _finished.Task;
    /// <summary>A /v2 job: its images are kept in the outputs folder when it finishes.</summary>
    public bool KeepsImages => keepImages != null;

    internal void Complete(ImageJobResult result) => Finish(respond(this, result), cancelled: result.Interrupted && result.Images.Count == 0);

    internal void Finish(JobResponse response, bool cancelled)
    {
        Response = response.Body;
        Pngs = response.Pngs;
        State = cancelled ? JobState.Cancelled : JobState.Done;
        keepImages?.Invoke(this);
        _finished.TrySetResult();
    }

    internal void Fail(Exception error)
    {
        Error = error;
        State = JobState.Failed;
        _finished.TrySetResult();
    }

    internal void CancelQueued()
    {
        State = JobState.Cancelled;
        _finished.TrySetResult();
    }

    /// <summary>A1111's progress fraction: 0.01 + finished batches + the current batch's steps.</summary>
    public double Fraction
    {
        get
        {
            if (State is JobState.Done) return 1;
            if (Progress is not { } p || p.BatchCount == 0) return 0;
            double value = 0.01 + (double)p.BatchIndex / p.BatchCount;
            if (p.Steps > 0) value += 1.0 / p.BatchCount * p.Step / p.Steps;
            return Math.Min(value, 1);
        }
    }
}

/// <summary>
/// The in-process queue (<c>--queue memory</c>): one worker (one loaded model, weights patched in place per job), jobs in
/// arrival order, at most <c>capacity</c> waiting.
/// </summary>
public sealed class JobQueue : IJobQueue
{
    private readonly Channel<ServerJob> _waiting = Channel.CreateUnbounded<ServerJob>(new UnboundedChannelOptions { SingleReader = true });
    private readonly RecentJobs _jobs = new();
    private readonly IImageGenerationBackend _backend;
    private readonly int _capacity;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _worker;
    private int _queued;

    public JobQueue(IImageGenerationBackend backend, int capacity)
    {
        _backend = backend;
        _capacity = capacity;
        _worker = Task.Run(WorkAsync);
    }

    /// <summary>The job being generated, or null when idle.</summary>
    public ServerJob? Current { get; private set; }

    public Task<ServerJob?> CurrentAsync() => Task.FromResult(Current);

    /// <summary>Jobs waiting to run (not the running one).</summary>
    public int QueuedCount => Volatile.Read(ref _queued);

    public Task<bool> TryEnqueueAsync(ServerJob job, JsonElement request)
    {
        if (Interlocked.Increment(ref _queued) > _capacity)
        {
            Interlocked.Decrement(ref _queued);
            return Task.FromResult(false);
        }
        _jobs.Add(job);
        _waiting.Writer.TryWrite(job);
        return Task.FromResult(true);
    }

    public Task<ServerJob?> FindAsync(string id) => Task.FromResult(_jobs.Find(id));

    /// <summary>Cancels one job: a waiting job never runs, a running one stops after its current step.</summary>
    public Task<bool> CancelAsync(string id)
    {
        if (_jobs.Find(id) is not { } job) return Task.FromResult(false);
        if (job.State == JobState.Queued) job.CancelQueued();
        else if (job.State == JobState.Running) job.Control.Interrupt();
        return Task.FromResult(true);
    }

    private async Task WorkAsync()
    {
        try
        {
            await foreach (var job in _waiting.Reader.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                Interlocked.Decrement(ref _queued);
                if (job.State == JobState.Cancelled)
                {
                    _jobs.Finished(job);
                    continue;
                }
                job.State = JobState.Running;
                job.StartedAt = DateTimeOffset.UtcNow;
                Current = job;
                try
                {
                    var result = await RunAsync(_backend, job.Job, job.Control, p => job.Progress = p).ConfigureAwait(false);
                    job.Complete(result);
                }
                catch (Exception e)
                {
                    job.Fail(e);
                }
                finally
                {
                    Current = null;
                    _jobs.Finished(job);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Runs one job on <paramref name="backend"/>, as both queues do: an interrupt that ends it before the backend
    /// returns is an interrupted result with no images; any other exception is the job's failure.
    /// </summary>
    internal static async Task<ImageJobResult> RunAsync(IImageGenerationBackend backend, ImageJob job, JobControl control, Action<ImageJobProgress> report)
    {
        try
        {
            return await backend.GenerateAsync(job, new Progress(report), control).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (control.IsInterrupted)
        {
            return new ImageJobResult([], [], Interrupted: true);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        Current?.Control.Interrupt();
        await _worker.ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>Synchronous progress (System.Progress would post to the thread pool and report out of order).</summary>
    private sealed class Progress(Action<ImageJobProgress> report) : IProgress<ImageJobProgress>
    {
        public void Report(ImageJobProgress value) => report(value);
    }
}
