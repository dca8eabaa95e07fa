using System.Globalization;
using System.Text.Json;
using StackExchange.Redis;

namespace SharpDiffusion.Server;

/// <summary>
/// <c>--queue memory|redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]</c> (and <c>rediss://</c> for TLS): null for the
/// in-process queue, else where the Redis server is (port 6379 and database 0 when none is given), in the URI form
/// redis-py and the Redis docs use. User and password are percent-decoded; the written form hides the password.
/// </summary>
public sealed record RedisAddress(string Host, int Port, string? User = null, string? Password = null, int Database = 0, bool Tls = false)
{
    public static RedisAddress? Parse(string text)
    {
        if (text.Equals("memory", StringComparison.OrdinalIgnoreCase)) return null;
        var bad = new ArgumentException($"--queue: '{Masked(text)}' is not memory or redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]");
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("redis" or "rediss") || uri.Host.Length == 0 || uri.Query.Length > 0)
            throw bad;
        string? user = null, password = null;
        if (uri.UserInfo.Length > 0)
        {
            // USER:PASSWORD or :PASSWORD (Redis 6 ACL user, or the default user); a bare word is ambiguous.
            int colon = uri.UserInfo.IndexOf(':');
            if (colon < 0) throw bad;
            user = colon == 0 ? null : Uri.UnescapeDataString(uri.UserInfo[..colon]);
            password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
        }
        int database = 0;
        string path = uri.AbsolutePath.Trim('/');
        if (path.Length > 0 && !(int.TryParse(path, NumberStyles.None, CultureInfo.InvariantCulture, out database) && database is >= 0 and < 10_000))
            throw bad;
        return new RedisAddress(uri.Host.Trim('[', ']'), uri.IsDefaultPort || uri.Port < 0 ? 6379 : uri.Port, user, password, database, uri.Scheme == "rediss");
    }

    /// <summary>The URI with any password replaced by ***, for messages and logs.</summary>
    public static string Masked(string text)
    {
        int at = text.IndexOf('@'), scheme = text.IndexOf("://", StringComparison.Ordinal);
        if (at < 0 || scheme < 0 || at < scheme) return text;
        int colon = text.IndexOf(':', scheme + 3);
        return colon >= 0 && colon < at ? text[..(colon + 1)] + "***" + text[at..] : text;
    }

    public override string ToString()
    {
        string credentials = User == null && Password == null ? "" : $"{User}:***@";
        string database = Database == 0 ? "" : "/" + Database.ToString(CultureInfo.InvariantCulture);
        return $"{(Tls ? "rediss" : "redis")}://{credentials}{Host}:{Port.ToString(CultureInfo.InvariantCulture)}{database}";
    }

    /// <summary>Connects or throws <see cref="RedisConnectionException"/> (the CLI turns it into one line and exit code 4).</summary>
    public ConnectionMultiplexer Connect()
    {
        var config = new ConfigurationOptions
        {
            AbortOnConnectFail = true, ConnectTimeout = 5000, ConnectRetry = 1, ClientName = "sharpdiffusion",
            User = User, Password = Password, DefaultDatabase = Database, Ssl = Tls, SslHost = Tls ? Host : null,
        };
        config.EndPoints.Add(Host, Port);
        return ConnectionMultiplexer.Connect(config);
    }
}

/// <summary>
/// The Redis layout shared by the server (<see cref="RedisJobQueue"/>) and the workers (<see cref="RedisJobWorker"/>):
/// a stream of job requests read by one consumer group, a hash per job (state and progress, written by its worker),
/// a result key per job (the guard against doing a job twice), cancel/skip flags, and a channel that names the job
/// whose hash or result just changed.
/// </summary>
internal static class RedisKeys
{
    private const string Prefix = "sharpdiffusion:";
    public static readonly RedisKey Stream = Prefix + "jobs";
    public const string Group = "workers";
    /// <summary>Running jobs by start time: A1111's progress/interrupt act on the oldest.</summary>
    public static readonly RedisKey Running = Prefix + "running";
    /// <summary>The ids of finished jobs, one entry per completion (operators and tests count them).</summary>
    public static readonly RedisKey Completed = Prefix + "completed";
    public const int CompletedKept = 10_000;
    public static readonly RedisChannel Events = RedisChannel.Literal(Prefix + "events");
    /// <summary>Told when a job is added, so that idle workers take it at once instead of at their next poll.</summary>
    public static readonly RedisChannel Enqueued = RedisChannel.Literal(Prefix + "enqueued");

    public static RedisKey Job(string id) => Prefix + "job:" + id;
    public static RedisKey Result(string id) => Prefix + "job:" + id + ":result";
    public static RedisKey Interrupt(string id) => Prefix + "job:" + id + ":interrupt";
    public static RedisKey Skip(string id) => Prefix + "job:" + id + ":skip";

    public static async Task EnsureGroupAsync(IDatabase db)
    {
        try
        {
            await db.StreamCreateConsumerGroupAsync(Stream, Group, StreamPosition.Beginning, createStream: true).ConfigureAwait(false);
        }
        catch (RedisServerException e) when (e.Message.StartsWith("BUSYGROUP", StringComparison.Ordinal))
        {
        }
    }

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
}

/// <summary>A job that failed on a Redis worker: its exception's type name and message, and whether it was bad input (422).</summary>
public sealed class RemoteJobException(string typeName, string message, bool badInput) : Exception(message)
{
    public string TypeName { get; } = typeName;
    public bool BadInput { get; } = badInput;
}

/// <summary>
/// The server's side of <c>--queue redis://</c>: a job is written to its hash and added to the stream (XADD with the
/// request JSON, its kind and id; the workers run it), and the server keeps a mirror <see cref="ServerJob"/> per job
/// that it updates from the job's hash and result key, when the events channel names the job and on a short sweep.
/// Nothing is generated here. Jobs outlive this process: they live in the stream until a worker acknowledges them.
/// </summary>
public sealed class RedisJobQueue : IJobQueue
{
    private static readonly TimeSpan SweepEvery = TimeSpan.FromMilliseconds(500);
    private readonly IConnectionMultiplexer _redis;
    private readonly IDatabase _db;
    private readonly ServerContext _server;
    private readonly TimeSpan _resultTtl;
    private readonly RecentJobs _jobs = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sweep;

    public RedisJobQueue(IConnectionMultiplexer redis, ServerContext server, TimeSpan resultTtl)
    {
        _redis = redis;
        _db = redis.GetDatabase();
        _server = server;
        _resultTtl = resultTtl;
        RedisKeys.EnsureGroupAsync(_db).GetAwaiter().GetResult();
        redis.GetSubscriber().Subscribe(RedisKeys.Events, (channel, message) =>
        {
            if (_jobs.Find(message.ToString()) is { } job && !job.Finished.IsCompleted) _ = RefreshQuietlyAsync(job);
        });
        _sweep = Task.Run(SweepAsync);
    }

    public async Task<bool> TryEnqueueAsync(ServerJob job, JsonElement request)
    {
        // Finished entries are deleted from the stream, so its length is the jobs waiting or running.
        if (await _db.StreamLengthAsync(RedisKeys.Stream).ConfigureAwait(false) >= _server.Options.MaxQueuedJobs) return false;
        var requestJson = request.GetRawText();
        bool keep = job.KeepsImages;
        var transaction = _db.CreateTransaction();
        _ = transaction.HashSetAsync(RedisKeys.Job(job.Id),
        [
            new("kind", job.Kind), new("request", requestJson), new("keep", keep), new("state", "queued"), new("created", RedisKeys.Now()),
        ]);
        // The server's selected model, VAE and CLIP skip travel with the job: a worker applies them before parsing.
        _ = transaction.StreamAddAsync(RedisKeys.Stream,
        [
            new("id", job.Id), new("kind", job.Kind), new("request", requestJson), new("options", JsonSerializer.Serialize(WorkerOptions())),
        ]);
        await transaction.ExecuteAsync().ConfigureAwait(false);
        Track(job);
        await _db.PublishAsync(RedisKeys.Enqueued, job.Id, CommandFlags.FireAndForget).ConfigureAwait(false);
        return true;
    }

    public async Task<ServerJob?> FindAsync(string id)
    {
        if (_jobs.Find(id) is { } known)
        {
            await RefreshAsync(known).ConfigureAwait(false);
            return known;
        }
        // A job queued before this server started (or by another server): rebuilt from its hash.
        var fields = (await _db.HashGetAllAsync(RedisKeys.Job(id)).ConfigureAwait(false)).ToDictionary(e => e.Name.ToString(), e => e.Value);
        if (!fields.TryGetValue("kind", out var kind) || !fields.TryGetValue("request", out var request)) return null;
        using var body = JsonDocument.Parse(request.ToString());
        var (parsed, _) = GenerationRoutes.Parse(_server, body.RootElement, kind.ToString());
        if (parsed == null) return null;
        var job = GenerationRoutes.CreateJob(_server, kind.ToString(), parsed, keepFiles: fields.TryGetValue("keep", out var keep) && (bool)keep, id);
        Track(job);
        await RefreshAsync(job).ConfigureAwait(false);
        return _jobs.Find(id) ?? job;
    }

    public async Task<bool> CancelAsync(string id)
    {
        if (await FindAsync(id).ConfigureAwait(false) is not { } job) return false;
        if (job.Finished.IsCompleted) return true;
        // The flag stops the job wherever it runs (the worker polls it); a job no worker has taken yet is finished
        // here, through the same result key a worker would write, so that whoever comes second does nothing.
        await _db.StringSetAsync(RedisKeys.Interrupt(id), 1, _resultTtl).ConfigureAwait(false);
        if (job.State == JobState.Queued
            && await _db.StringSetAsync(RedisKeys.Result(id), JsonSerializer.Serialize(new { state = "cancelled" }), _resultTtl, When.NotExists).ConfigureAwait(false))
        {
            await _db.HashSetAsync(RedisKeys.Job(id), "state", "cancelled").ConfigureAwait(false);
            await _db.KeyExpireAsync(RedisKeys.Job(id), _resultTtl).ConfigureAwait(false);
            await _db.PublishAsync(RedisKeys.Events, id).ConfigureAwait(false);
        }
        await RefreshAsync(job).ConfigureAwait(false);
        return true;
    }

    public async Task<ServerJob?> CurrentAsync()
    {
        foreach (var id in await _db.SortedSetRangeByRankAsync(RedisKeys.Running, 0, 7).ConfigureAwait(false))
        {
            if (await FindAsync(id.ToString()).ConfigureAwait(false) is { State: JobState.Running } job) return job;
        }
        return null;
    }

    private Dictionary<string, object?> WorkerOptions()
    {
        var settings = _server.Settings;
        return new()
        {
            ["sd_model_checkpoint"] = settings.Checkpoint?.Name,
            ["sd_vae"] = settings.SdVae,
            ["CLIP_stop_at_last_layers"] = settings.ClipStopAtLastLayers,
        };
    }

    /// <summary>Remembers the mirror and forwards A1111's interrupt/skip of it to its worker through flag keys.</summary>
    private void Track(ServerJob job)
    {
        _jobs.Add(job);
        job.Control.Interrupted.Register(() => _db.StringSet(RedisKeys.Interrupt(job.Id), 1, _resultTtl, flags: CommandFlags.FireAndForget));
        job.Control.Skipped += () => _db.StringSet(RedisKeys.Skip(job.Id), 1, _resultTtl, flags: CommandFlags.FireAndForget);
    }

    /// <summary>Brings the mirror up to date: finished once the result key exists, else state and progress from the hash.</summary>
    private async Task RefreshAsync(ServerJob job)
    {
        if (job.Finished.IsCompleted) return;
        var result = await _db.StringGetAsync(RedisKeys.Result(job.Id)).ConfigureAwait(false);
        if (result.HasValue)
        {
            lock (job)
            {
                if (job.Finished.IsCompleted) return;
                JobResults.Apply(job, result.ToString());
            }
            _jobs.Finished(job);
            return;
        }
        var fields = (await _db.HashGetAllAsync(RedisKeys.Job(job.Id)).ConfigureAwait(false)).ToDictionary(e => e.Name.ToString(), e => e.Value);
        lock (job)
        {
            if (job.Finished.IsCompleted || !fields.TryGetValue("state", out var state) || state != "running") return;
            job.State = JobState.Running;
            if (fields.TryGetValue("started", out var started)) job.StartedAt = DateTimeOffset.FromUnixTimeMilliseconds((long)started);
            if (fields.TryGetValue("steps", out var steps) && (int)steps > 0)
            {
                int Int(string name) => fields.TryGetValue(name, out var v) ? (int)v : 0;
                job.Progress = new ImageJobProgress(Int("batch"), Int("batches"), Int("step"), (int)steps)
                {
                    PreviewRgb = fields.TryGetValue("preview", out var preview) && !preview.IsNullOrEmpty ? (byte[])preview! : null,
                    PreviewWidth = Int("preview_width"),
                    PreviewHeight = Int("preview_height"),
                };
            }
        }
    }

    private async Task RefreshQuietlyAsync(ServerJob job)
    {
        try
        {
            await RefreshAsync(job).ConfigureAwait(false);
        }
        catch (RedisException)
        {
            // Redis is away for a moment: the next event or sweep tries again.
        }
    }

    private async Task SweepAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            foreach (var job in _jobs.Unfinished.ToList()) await RefreshQuietlyAsync(job).ConfigureAwait(false);
            try
            {
                await Task.Delay(SweepEvery, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    /// <summary>Stops following jobs; they stay queued in Redis for the workers and for the next server.</summary>
    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _sweep.ConfigureAwait(false);
        await _redis.GetSubscriber().UnsubscribeAsync(RedisKeys.Events).ConfigureAwait(false);
        _stop.Dispose();
    }
}

/// <summary>A finished job's result as it is stored in Redis (JSON), written by a worker and read by the server.</summary>
internal static class JobResults
{
    public static string Done(JobResponse response, bool cancelled) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["state"] = cancelled ? "cancelled" : "done",
        ["response"] = response.Body,
        ["pngs"] = response.Pngs.Select(Convert.ToBase64String).ToList(),
    }, ResponseJson);

    public static string Failed(Exception error) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["state"] = "failed",
        ["error"] = error.Message,
        ["error_type"] = error is RemoteJobException remote ? remote.TypeName : error.GetType().Name,
        ["bad_input"] = GenerationRoutes.IsBadInput(error),
    });

    /// <summary>The HTTP server's JSON settings (A1111's names as they are, no escaping of '+' and '&lt;' in prompts).</summary>
    private static readonly JsonSerializerOptions ResponseJson = new()
    {
        PropertyNamingPolicy = null,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void Apply(ServerJob job, string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var state = root.GetProperty("state").GetString();
        if (state == "failed")
        {
            job.Fail(new RemoteJobException(root.GetProperty("error_type").GetString()!, root.GetProperty("error").GetString()!, root.GetProperty("bad_input").GetBoolean()));
        }
        else if (root.TryGetProperty("response", out var response))
        {
            var pngs = root.GetProperty("pngs").EnumerateArray().Select(p => Convert.FromBase64String(p.GetString()!)).ToList();
            job.Finish(new JobResponse(response.Clone(), pngs), cancelled: state == "cancelled");
        }
        else job.CancelQueued(); // cancelled before any worker took it
    }
}
