using System.Text.Json;
using StackExchange.Redis;

namespace SharpDiffusion.Server;

/// <summary>How a worker takes part in the Redis queue.</summary>
public sealed record RedisWorkerOptions
{
    /// <summary>The consumer name in the group (unique per worker: the pending entries of a name are that worker's).</summary>
    public required string Name { get; init; }

    /// <summary>A job whose worker has not been heard of for this long is taken over by another worker (XAUTOCLAIM).</summary>
    public TimeSpan ClaimAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a finished job's result and state stay in Redis.</summary>
    public TimeSpan ResultTtl { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How often an idle worker looks for work, and a busy one for its job's cancel/skip flags.</summary>
    public TimeSpan PollEvery { get; init; } = TimeSpan.FromMilliseconds(200);
}

/// <summary>
/// <c>sharpdiffusion worker</c>: takes jobs from the Redis stream (XREADGROUP, or XAUTOCLAIM of a job whose worker went
/// silent for <see cref="RedisWorkerOptions.ClaimAfter"/>), runs each through the same request parsing, backend
/// (<see cref="GenerationServiceBackend"/>) and response building as the in-process queue, writes its progress to the
/// job's hash, its result with a TTL, then acknowledges it (XACK, and XDEL so that the stream holds only open jobs).
/// While a job runs the worker re-claims it for itself every third of the claim time (XCLAIM JUSTID resets its idle
/// time), so a slow live job is not taken over.
/// </summary>
public sealed class RedisJobWorker(IConnectionMultiplexer redis, ServerContext context, RedisWorkerOptions options)
{
    private readonly IDatabase _db = redis.GetDatabase();

    /// <summary>One line per event worth telling the operator (job taken, finished, reclaimed).</summary>
    public event Action<string>? Log;

    /// <summary>Works until <paramref name="stop"/>; a job running then is left pending, and another worker reclaims it.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        await RedisKeys.EnsureGroupAsync(_db).ConfigureAwait(false);
        using var wake = new SemaphoreSlim(0, 1);
        var subscriber = redis.GetSubscriber();
        void Wake(RedisChannel channel, RedisValue id)
        {
            try { wake.Release(); } catch (SemaphoreFullException) { } catch (ObjectDisposedException) { }
        }
        await subscriber.SubscribeAsync(RedisKeys.Enqueued, Wake).ConfigureAwait(false);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                if (await NextAsync().ConfigureAwait(false) is { } entry) await ProcessAsync(entry, stop).ConfigureAwait(false);
                else await wake.WaitAsync(options.PollEvery, stop).ConfigureAwait(false); // a new job, or the next look for stale ones
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
            }
            catch (RedisException e)
            {
                // Redis restarting or out of reach: say so and try again; the job in hand, if any, stays pending.
                Log?.Invoke($"Redis: {e.Message}");
                try { await Task.Delay(TimeSpan.FromSeconds(1), stop).ConfigureAwait(false); } catch (OperationCanceledException) { }
            }
        }
        await subscriber.UnsubscribeAsync(RedisKeys.Enqueued, Wake).ConfigureAwait(false);
    }

    /// <summary>A job left by a silent worker first, else the next new one, else null.</summary>
    private async Task<StreamEntry?> NextAsync()
    {
        var claimed = await _db.StreamAutoClaimAsync(RedisKeys.Stream, RedisKeys.Group, options.Name,
            (long)options.ClaimAfter.TotalMilliseconds, "0-0", 1).ConfigureAwait(false);
        if (claimed.ClaimedEntries is [var stale, ..] && !stale.IsNull)
        {
            Log?.Invoke($"job {stale["id"]}: taken over from a worker silent for {options.ClaimAfter.TotalSeconds:0.#} s");
            return stale;
        }
        var read = await _db.StreamReadGroupAsync(RedisKeys.Stream, RedisKeys.Group, options.Name, StreamPosition.NewMessages, 1).ConfigureAwait(false);
        return read is [var next, ..] ? next : null;
    }

    private async Task ProcessAsync(StreamEntry entry, CancellationToken stop)
    {
        string id = entry["id"].ToString();
        string kind = entry["kind"].ToString();
        if (id.Length == 0 || await _db.KeyExistsAsync(RedisKeys.Result(id)).ConfigureAwait(false))
        {
            // Finished already: cancelled while queued, or done by a worker that died before acknowledging it.
            await AcknowledgeAsync(entry.Id, id).ConfigureAwait(false);
            return;
        }
        var started = DateTimeOffset.UtcNow;
        await _db.HashSetAsync(RedisKeys.Job(id),
        [
            new("state", "running"), new("worker", options.Name), new("started", started.ToUnixTimeMilliseconds()),
            new("batch", 0), new("batches", 0), new("step", 0), new("steps", 0), new("preview", RedisValue.EmptyString),
        ]).ConfigureAwait(false);
        await _db.HashIncrementAsync(RedisKeys.Job(id), "attempts").ConfigureAwait(false);
        await _db.SortedSetAddAsync(RedisKeys.Running, id, started.ToUnixTimeMilliseconds()).ConfigureAwait(false);
        await _db.PublishAsync(RedisKeys.Events, id).ConfigureAwait(false);
        Log?.Invoke($"job {id}: {kind} started");

        var control = new JobControl();
        using var stopping = stop.Register(control.Interrupt);
        using var watching = new CancellationTokenSource();
        var watcher = WatchAsync(entry.Id, id, control, watching.Token);
        string outcome;
        bool cancelled = false;
        try
        {
            var parsed = Prepare(entry["options"].ToString(), entry["request"].ToString(), kind);
            var result = await JobQueue.RunAsync(context.Backend, parsed.Job, control, p => ReportProgress(id, p)).ConfigureAwait(false);
            if (stop.IsCancellationRequested) return; // shutting down: the job stays pending for another worker
            cancelled = result.Interrupted && result.Images.Count == 0;
            outcome = JobResults.Done(GenerationRoutes.Respond(context, parsed, result, kind), cancelled);
        }
        catch (Exception e) when (!stop.IsCancellationRequested)
        {
            outcome = JobResults.Failed(e);
        }
        finally
        {
            await watching.CancelAsync().ConfigureAwait(false);
            await watcher.ConfigureAwait(false);
        }

        // The result key is the completion guard: SET NX writes the result only if no one has, in one atomic command.
        // A worker that was taken over while still alive (paused past the claim time) may finish the same job later;
        // its SET NX then fails and its result is dropped, so a job's result is written once and counted once. Checking
        // the pending entry's owner first would not do: ownership can move between the check and the write.
        if (await _db.StringSetAsync(RedisKeys.Result(id), outcome, options.ResultTtl, When.NotExists).ConfigureAwait(false))
        {
            var state = JsonDocument.Parse(outcome).RootElement.GetProperty("state").GetString()!;
            var transaction = _db.CreateTransaction();
            _ = transaction.HashSetAsync(RedisKeys.Job(id), [new("state", state), new("finished", RedisKeys.Now())]);
            _ = transaction.KeyExpireAsync(RedisKeys.Job(id), options.ResultTtl);
            _ = transaction.ListRightPushAsync(RedisKeys.Completed, id);
            _ = transaction.ListTrimAsync(RedisKeys.Completed, -RedisKeys.CompletedKept, -1);
            await transaction.ExecuteAsync().ConfigureAwait(false);
            Log?.Invoke($"job {id}: {state} in {(DateTimeOffset.UtcNow - started).TotalSeconds:0.0} s");
        }
        else Log?.Invoke($"job {id}: already finished by another worker; this result is dropped");
        await AcknowledgeAsync(entry.Id, id).ConfigureAwait(false);
        await _db.PublishAsync(RedisKeys.Events, id).ConfigureAwait(false);
    }

    /// <summary>Applies the server's selected model/VAE/CLIP skip, then parses the request as the HTTP server did.</summary>
    private GenerationRoutes.ParsedRequest Prepare(string optionsJson, string requestJson, string kind)
    {
        using var settings = JsonDocument.Parse(optionsJson);
        if (context.Settings.Apply(settings.RootElement) is { } problem)
            throw new ArgumentException($"worker {options.Name}: {problem.Field}: {problem.Message} in {context.Catalog.Folder.Root}");
        using var request = JsonDocument.Parse(requestJson);
        var (parsed, errors) = GenerationRoutes.Parse(context, request.RootElement, kind);
        return parsed ?? throw new ArgumentException($"worker {options.Name}: " + string.Join("; ", errors.Select(e => $"{string.Join('.', e.Loc)}: {e.Msg}")));
    }

    /// <summary>Progress into the job's hash, then a note on the events channel (fire and forget: a step never waits on Redis).</summary>
    private void ReportProgress(string id, ImageJobProgress p)
    {
        _db.HashSet(RedisKeys.Job(id),
        [
            new("batch", p.BatchIndex), new("batches", p.BatchCount), new("step", p.Step), new("steps", p.Steps),
            new("preview", p.PreviewRgb ?? []), new("preview_width", p.PreviewWidth), new("preview_height", p.PreviewHeight),
        ], CommandFlags.FireAndForget);
        _db.Publish(RedisKeys.Events, id, CommandFlags.FireAndForget);
    }

    /// <summary>While the job runs: its cancel and skip flags, and the heartbeat that keeps it this worker's.</summary>
    private async Task WatchAsync(RedisValue entryId, string id, JobControl control, CancellationToken done)
    {
        var heartbeatEvery = options.ClaimAfter / 3;
        var lastBeat = DateTimeOffset.UtcNow;
        while (!done.IsCancellationRequested)
        {
            try
            {
                if (!control.IsInterrupted && await _db.KeyExistsAsync(RedisKeys.Interrupt(id)).ConfigureAwait(false)) control.Interrupt();
                if ((await _db.StringGetDeleteAsync(RedisKeys.Skip(id)).ConfigureAwait(false)).HasValue) control.Skip();
                if (DateTimeOffset.UtcNow - lastBeat >= heartbeatEvery && await StillMineAsync(entryId).ConfigureAwait(false))
                {
                    await _db.StreamClaimIdsOnlyAsync(RedisKeys.Stream, RedisKeys.Group, options.Name, 0, [entryId]).ConfigureAwait(false);
                    lastBeat = DateTimeOffset.UtcNow;
                }
                await Task.Delay(Min(options.PollEvery, heartbeatEvery), done).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (done.IsCancellationRequested)
            {
            }
            catch (RedisException e)
            {
                Log?.Invoke($"job {id}: Redis: {e.Message}");
                try { await Task.Delay(options.PollEvery, done).ConfigureAwait(false); } catch (OperationCanceledException) { }
            }
        }
    }

    /// <summary>
    /// Whether the entry is still pending on this worker: a worker that was taken over stops its heartbeat instead of
    /// claiming the job back (it still finishes, and the result guard keeps the first result).
    /// </summary>
    private async Task<bool> StillMineAsync(RedisValue entryId)
    {
        var pending = await _db.StreamPendingMessagesAsync(RedisKeys.Stream, RedisKeys.Group, 1, options.Name, entryId, entryId).ConfigureAwait(false);
        return pending.Length == 1;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private async Task AcknowledgeAsync(RedisValue entryId, string id)
    {
        var transaction = _db.CreateTransaction();
        _ = transaction.StreamAcknowledgeAsync(RedisKeys.Stream, RedisKeys.Group, entryId);
        _ = transaction.StreamDeleteAsync(RedisKeys.Stream, [entryId]);
        _ = transaction.SortedSetRemoveAsync(RedisKeys.Running, id);
        await transaction.ExecuteAsync().ConfigureAwait(false);
    }
}
