using System.Collections.Concurrent;
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

/// <summary>One request in the queue: its id, state, progress and, once finished, its result or error.</summary>
public sealed class ServerJob(string kind, ImageJob job, Func<ServerJob, ImageJobResult, object> respond)
{
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Id { get; } = Guid.NewGuid().ToString("N");
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
    public ImageJobResult? Result { get; private set; }
    /// <summary>The HTTP response body built from the result (A1111's txt2img/img2img response).</summary>
    public object? Response { get; private set; }
    public Exception? Error { get; private set; }
    public Task Finished => _finished.Task;

    internal void Complete(ImageJobResult result)
    {
        Result = result;
        Response = respond(this, result);
        State = result.Interrupted && result.Images.Count == 0 ? JobState.Cancelled : JobState.Done;
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
/// The in-process queue: one worker (one loaded model, weights patched in place per job), jobs in arrival order, at
/// most <c>capacity</c> waiting. Finished jobs are kept for a while so that their ids can still be asked about.
/// </summary>
public sealed class JobQueue : IAsyncDisposable
{
    private const int FinishedJobsKept = 256;
    private readonly Channel<ServerJob> _waiting = Channel.CreateUnbounded<ServerJob>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, ServerJob> _jobs = new();
    private readonly ConcurrentQueue<string> _finishedOrder = new();
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

    public int QueuedCount => Volatile.Read(ref _queued);

    /// <summary>False when the queue is full (the caller answers 503).</summary>
    public bool TryEnqueue(ServerJob job)
    {
        if (Interlocked.Increment(ref _queued) > _capacity)
        {
            Interlocked.Decrement(ref _queued);
            return false;
        }
        _jobs[job.Id] = job;
        _waiting.Writer.TryWrite(job);
        return true;
    }

    public ServerJob? Find(string id) => _jobs.GetValueOrDefault(id);

    /// <summary>Cancels one job: a waiting job never runs, a running one stops after its current step.</summary>
    public bool Cancel(string id)
    {
        if (!_jobs.TryGetValue(id, out var job)) return false;
        if (job.State == JobState.Queued) job.CancelQueued();
        else if (job.State == JobState.Running) job.Control.Interrupt();
        return true;
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
                    Forget(job);
                    continue;
                }
                job.State = JobState.Running;
                job.StartedAt = DateTimeOffset.UtcNow;
                Current = job;
                try
                {
                    var progress = new Progress(job);
                    var result = await _backend.GenerateAsync(job.Job, progress, job.Control).ConfigureAwait(false);
                    job.Complete(result);
                }
                catch (OperationCanceledException) when (job.Control.IsInterrupted)
                {
                    job.Complete(new ImageJobResult([], [], Interrupted: true));
                }
                catch (Exception e)
                {
                    job.Fail(e);
                }
                finally
                {
                    Current = null;
                    Forget(job);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private void Forget(ServerJob finished)
    {
        _finishedOrder.Enqueue(finished.Id);
        while (_finishedOrder.Count > FinishedJobsKept && _finishedOrder.TryDequeue(out var old)) _jobs.TryRemove(old, out _);
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        Current?.Control.Interrupt();
        await _worker.ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>Synchronous progress (System.Progress would post to the thread pool and report out of order).</summary>
    private sealed class Progress(ServerJob job) : IProgress<ImageJobProgress>
    {
        public void Report(ImageJobProgress value) => job.Progress = value;
    }
}
