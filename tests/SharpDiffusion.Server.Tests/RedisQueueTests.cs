using System.Text.Json;
using SharpDiffusion.Cli;
using StackExchange.Redis;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// <c>serve --queue redis://</c> with <c>sharpdiffusion worker</c>s, against a redis-server of the test's own: the same
/// image as the in-process queue, a worker killed mid-job (the other finishes it, once), queued jobs surviving a server
/// restart, cancel of queued and running jobs, and the completion guard when two live workers finish one job.
/// </summary>
public class RedisQueueTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    private static async Task WaitFor(Func<Task<bool>> condition, string what, Func<string>? context = null)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < Patience)
        {
            if (await condition()) return;
            await Task.Delay(50);
        }
        Assert.Fail($"timed out waiting for {what}{(context == null ? "" : ": " + context())}");
    }

    private static async Task<JsonElement> Job(TestServer server, string id) => (await server.GetAsync("/v2/jobs/" + id)).Json;

    private static async Task<string> Submit(TestServer server, object request)
    {
        var (status, body) = await server.PostAsync("/v2/jobs", request);
        Assert.Equal(202, status);
        return body.GetProperty("id").GetString()!;
    }

    private static byte[] FirstPng(JsonElement response) => Convert.FromBase64String(response.GetProperty("images")[0].GetString()!);

    private static async Task<string[]> Completions(RedisTestServer redis) =>
        (await redis.Db.ListRangeAsync("sharpdiffusion:completed")).Select(v => v.ToString()).ToArray();

    [Fact]
    public void RedisServerIsInstalled() => Assert.True(File.Exists(RedisTestServer.Binary), RedisTestServer.MissingMessage);

    [Fact]
    public async Task TxtToImgThroughAWorkerProcessGivesTheInProcessPng()
    {
        var request = new { prompt = "a red fox", negative_prompt = "blurry", steps = 6, sampler_name = "Euler", cfg_scale = 7, seed = 42, width = 16, height = 16 };
        JsonElement expected;
        await using (var memory = await TestServer.StartAsync())
        {
            var (memoryStatus, memoryBody) = await memory.PostAsync("/sdapi/v1/txt2img", request);
            Assert.Equal(200, memoryStatus);
            expected = memoryBody;
        }

        await using var redis = await RedisTestServer.StartAsync();
        // The HTTP server generates nothing itself: its backend fails the test if it is ever asked to.
        await using var server = await TestServer.StartAsync(queue: redis.Url, backend: new NoGenerationHere());
        using var worker = new WorkerProcess(redis.Url, server.ModelsDir, "only", "30s");
        var post = server.PostAsync("/sdapi/v1/txt2img", request);
        await WaitFor(() => Task.FromResult(post.IsCompleted), "the synchronous txt2img", () => worker.Log);
        var (status, body) = await post;
        Assert.True(status == 200, $"{status} {body}: {worker.Log}");
        Assert.Equal(FirstPng(expected), FirstPng(body));
        Assert.Equal(expected.GetProperty("parameters").GetRawText(), body.GetProperty("parameters").GetRawText());
        var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
        Assert.Equal(42, info.GetProperty("seed").GetInt64());
        Assert.Equal("tiny_sd1", info.GetProperty("sd_model_name").GetString());

        // The job was acknowledged and deleted from the stream, finished once, and ran on the worker.
        var completed = Assert.Single(await Completions(redis));
        Assert.Equal(0, await redis.Db.StreamLengthAsync("sharpdiffusion:jobs"));
        Assert.Equal("only", (string?)await redis.Db.HashGetAsync("sharpdiffusion:job:" + completed, "worker"));
        Assert.Equal("done", (string?)await redis.Db.HashGetAsync("sharpdiffusion:job:" + completed, "state"));
        Assert.True(await redis.Db.KeyTimeToLiveAsync("sharpdiffusion:job:" + completed + ":result") is { } ttl && ttl > TimeSpan.FromMinutes(50));
    }

    [Fact]
    public async Task AWorkerKilledMidJobLeavesItToTheOtherWhichFinishesItOnce()
    {
        await using var redis = await RedisTestServer.StartAsync();
        await using var server = await TestServer.StartAsync(queue: redis.Url);
        // Long enough to be killed in the middle: many steps at a size where each step takes a while.
        var longRequest = new { prompt = "a long job", steps = 40, sampler_name = "Euler", seed = 7, width = 64, height = 64 };
        var longId = await Submit(server, longRequest);
        var shortIds = new[] { await Submit(server, new { prompt = "after one", steps = 3, seed = 1, width = 16, height = 16 }),
                               await Submit(server, new { prompt = "after two", steps = 3, seed = 2, width = 16, height = 16 }) };

        using var a = new WorkerProcess(redis.Url, server.ModelsDir, "A", "2s");
        await WaitFor(async () => (await Job(server, longId)) is var j && j.GetProperty("sampling_step").GetInt32() >= 2
            && (string?)await redis.Db.HashGetAsync("sharpdiffusion:job:" + longId, "worker") == "A", "worker A to be 2 steps into the long job", () => a.Log);
        using var b = new WorkerProcess(redis.Url, server.ModelsDir, "B", "2s");
        a.Kill9();
        Assert.True(a.HasExited);
        int stepAtKill = (await Job(server, longId)).GetProperty("sampling_step").GetInt32();

        foreach (var id in shortIds.Prepend(longId))
            await WaitFor(async () => (await Job(server, id)).GetProperty("state").GetString() == "done", $"job {id} to finish on B", () => b.Log);
        var job = await Job(server, longId);
        Assert.Equal(1, job.GetProperty("result").GetProperty("images").GetArrayLength());
        Assert.Equal("B", (string?)await redis.Db.HashGetAsync("sharpdiffusion:job:" + longId, "worker"));
        Assert.Equal(2, (int)await redis.Db.HashGetAsync("sharpdiffusion:job:" + longId, "attempts")); // started on A, then on B
        Assert.Contains($"job {longId}: taken over", b.Log);
        Assert.True(stepAtKill < 40, $"the long job had finished its {stepAtKill} steps before the kill");

        // Every job finished exactly once, nothing is left pending or in the stream.
        var completions = await Completions(redis);
        Assert.Equal(shortIds.Prepend(longId).Order(), completions.Order());
        Assert.Equal(0, await redis.Db.StreamLengthAsync("sharpdiffusion:jobs"));
        var pending = await redis.Db.StreamPendingAsync("sharpdiffusion:jobs", "workers");
        Assert.Equal(0, pending.PendingMessageCount);

        // B's image of the reclaimed job is the image the job gives when nothing goes wrong.
        var (status, again) = await server.PostAsync("/sdapi/v1/txt2img", longRequest);
        Assert.Equal(200, status);
        Assert.Equal(FirstPng(job.GetProperty("result")), FirstPng(again));
    }

    [Fact]
    public async Task QueuedJobsSurviveAServerRestart()
    {
        await using var redis = await RedisTestServer.StartAsync();
        var ids = new List<string>();
        await using (var first = await TestServer.StartAsync(queue: redis.Url))
        {
            for (int i = 0; i < 3; i++) ids.Add(await Submit(first, new { prompt = $"queued {i}", steps = 3, seed = i, width = 16, height = 16 }));
            Assert.Equal("queued", (await Job(first, ids[0])).GetProperty("state").GetString());
        }
        Assert.Equal(3, await redis.Db.StreamLengthAsync("sharpdiffusion:jobs"));

        await using var second = await TestServer.StartAsync(queue: redis.Url);
        Assert.Equal("queued", (await Job(second, ids[2])).GetProperty("state").GetString()); // known to the new server from Redis
        using var events = await second.Client.GetAsync($"/v2/jobs/{ids[0]}/events", HttpCompletionOption.ResponseHeadersRead);
        await using var worker = new InProcessWorker(redis.Url, second.ModelsDir, "late");

        // The job's events come from what the worker writes to Redis: progress, then the result.
        using (var reader = new StreamReader(await events.Content.ReadAsStreamAsync()))
        {
            var states = new List<(string Event, JsonElement Data)>();
            string? name = null;
            while (await reader.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal)) states.Add((name!, JsonDocument.Parse(line[6..]).RootElement.Clone()));
                if (states.Count > 0 && states[^1].Event == "done") break;
            }
            Assert.Equal("queued", states[0].Data.GetProperty("state").GetString());
            var done = states[^1].Data;
            Assert.Equal("done", done.GetProperty("state").GetString());
            Assert.Equal(3, done.GetProperty("sampling_step").GetInt32());
            Assert.Equal(1, done.GetProperty("result").GetProperty("images").GetArrayLength());
        }
        foreach (var id in ids)
            await WaitFor(async () => (await Job(second, id)).GetProperty("state").GetString() == "done", $"job {id} to finish after the restart");
        foreach (var id in ids)
        {
            var job = await Job(second, id);
            var url = Assert.Single(job.GetProperty("images").EnumerateArray()).GetString();
            using var image = await second.Client.GetAsync(url);
            Assert.Equal(200, (int)image.StatusCode);
            Assert.Equal(FirstPng(job.GetProperty("result")), await image.Content.ReadAsByteArrayAsync());
            Assert.Contains($"queued {ids.IndexOf(id)}", JsonDocument.Parse(job.GetProperty("result").GetProperty("info").GetString()!).RootElement.GetProperty("prompt").GetString());
        }
        Assert.Equal(ids.Order(), (await Completions(redis)).Order());
    }

    [Fact]
    public async Task AFullRedisQueueAnswers503()
    {
        await using var redis = await RedisTestServer.StartAsync();
        await using var server = await TestServer.StartAsync(queue: redis.Url, maxQueue: 2);
        await Submit(server, new { prompt = "one", steps = 3, width = 16, height = 16 });
        await Submit(server, new { prompt = "two", steps = 3, width = 16, height = 16 });
        using var refused = await server.Client.PostAsync("/v2/jobs", new StringContent(JsonSerializer.Serialize(new { prompt = "three", steps = 3 }), System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(503, (int)refused.StatusCode);
        Assert.Equal("5", refused.Headers.GetValues("Retry-After").Single());
        Assert.Equal(2, await redis.Db.StreamLengthAsync("sharpdiffusion:jobs"));
        // An invalid request never reaches Redis: the server validates it (422) before queueing.
        Assert.Equal(422, (await server.PostAsync("/v2/jobs", new { prompt = "bad", steps = 0 })).Status);
        Assert.Equal(2, await redis.Db.StreamLengthAsync("sharpdiffusion:jobs"));
    }

    [Fact]
    public async Task CancelStopsAQueuedAndARunningJobThroughRedis()
    {
        await using var redis = await RedisTestServer.StartAsync();
        await using var server = await TestServer.StartAsync(queue: redis.Url);
        var running = await Submit(server, new { prompt = "running", steps = 150, seed = 3, width = 64, height = 64, n_iter = 4 });
        var queued = await Submit(server, new { prompt = "queued", steps = 3, seed = 4, width = 16, height = 16 });
        await using var worker = new InProcessWorker(redis.Url, server.ModelsDir, "one");
        await WaitFor(async () => (await Job(server, running)).GetProperty("sampling_step").GetInt32() >= 1, "the first job to run");

        // A1111's progress follows the job running on the worker.
        var (_, progress) = await server.GetAsync("/sdapi/v1/progress");
        Assert.Equal(150, progress.GetProperty("state").GetProperty("sampling_steps").GetInt32());
        Assert.Equal(4, progress.GetProperty("state").GetProperty("job_count").GetInt32());
        Assert.True(progress.GetProperty("progress").GetDouble() > 0);

        using (var delete = await server.Client.DeleteAsync("/v2/jobs/" + queued))
        {
            Assert.Equal(200, (int)delete.StatusCode);
            Assert.Equal("cancelled", JsonDocument.Parse(await delete.Content.ReadAsStringAsync()).RootElement.GetProperty("state").GetString());
        }
        using (var delete = await server.Client.DeleteAsync("/v2/jobs/" + running)) Assert.Equal(200, (int)delete.StatusCode);
        await WaitFor(async () => (await Job(server, running)).GetProperty("state").GetString() != "running", "the running job to stop",
            () => string.Join('\n', worker.Log));
        // As A1111 (and the in-process queue): the interrupted batch's image as far as it got, and no further batch.
        var stopped = await Job(server, running);
        Assert.Equal("done", stopped.GetProperty("state").GetString());
        Assert.True(stopped.GetProperty("sampling_step").GetInt32() < 150);
        Assert.Equal(1, stopped.GetProperty("result").GetProperty("images").GetArrayLength());

        // The worker skips the cancelled job (it never starts it) and both entries leave the stream.
        await WaitFor(async () => await redis.Db.StreamLengthAsync("sharpdiffusion:jobs") == 0, "the stream to empty");
        Assert.False((await redis.Db.HashGetAsync("sharpdiffusion:job:" + queued, "attempts")).HasValue);
        Assert.Equal([running], await Completions(redis));
        Assert.Equal(404, (await server.GetAsync("/v2/jobs/nosuchjob")).Status);
        using (var missing = await server.Client.DeleteAsync("/v2/jobs/nosuchjob")) Assert.Equal(404, (int)missing.StatusCode);

        // A1111's /interrupt stops the synchronous txt2img running on the worker: one image of four.
        var sync = server.PostAsync("/sdapi/v1/txt2img", new { prompt = "interrupted", steps = 150, seed = 5, width = 64, height = 64, n_iter = 4 });
        await WaitFor(async () => (await server.GetAsync("/sdapi/v1/progress")).Json.GetProperty("state").GetProperty("sampling_step").GetInt32() >= 1, "the synchronous job to run");
        await server.PostAsync("/sdapi/v1/interrupt", new { });
        var (status, body) = await sync;
        Assert.Equal(200, status);
        Assert.Equal(1, body.GetProperty("images").GetArrayLength());
    }

    /// <summary>Finishes with a black image whose infotext is its tag, once <see cref="Release"/> is called.</summary>
    private sealed class GatedBackend(string tag) : IImageGenerationBackend
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Started;

        public void Release() => _gate.TrySetResult();

        public async Task<ImageJobResult> GenerateAsync(ImageJob job, IProgress<ImageJobProgress> progress, JobControl control)
        {
            Interlocked.Increment(ref Started);
            progress.Report(new ImageJobProgress(0, 1, 1, job.Steps));
            await _gate.Task;
            return new ImageJobResult([new GeneratedImage(new byte[job.Width * job.Height * 3], job.Width, job.Height, job.Seed, tag)], [], false);
        }

        public Task<EmbeddingListing> ListEmbeddingsAsync(CheckpointEntry checkpoint, CancellationToken cancellationToken) => Task.FromResult(new EmbeddingListing([], []));

        public void Unload() { }
    }

    [Fact]
    public async Task TwoLiveWorkersFinishingOneJobPublishOneResult()
    {
        await using var redis = await RedisTestServer.StartAsync();
        await using var server = await TestServer.StartAsync(queue: redis.Url);
        var id = await Submit(server, new { prompt = "contested", steps = 2, seed = 9, width = 8, height = 8 });
        // A is paused long past B's claim time without a heartbeat (its own claim time is long): B takes the job over.
        var slow = new GatedBackend("slow A");
        var fast = new GatedBackend("fast B");
        fast.Release();
        await using var a = new InProcessWorker(redis.Url, server.ModelsDir, "A", slow, claimAfter: TimeSpan.FromMinutes(10));
        await WaitFor(() => Task.FromResult(slow.Started == 1), "A to take the job");
        await using var b = new InProcessWorker(redis.Url, server.ModelsDir, "B", fast, claimAfter: TimeSpan.FromMilliseconds(500));
        await WaitFor(async () => (await Job(server, id)).GetProperty("state").GetString() == "done", "B to finish the job");
        slow.Release();
        await WaitFor(() => Task.FromResult(a.Log.Any(l => l.Contains("already finished", StringComparison.Ordinal) || l.Contains(" in ", StringComparison.Ordinal))),
            "A to finish too", () => string.Join('\n', a.Log));
        Assert.Contains(a.Log, l => l.Contains("already finished by another worker; this result is dropped", StringComparison.Ordinal));

        var job = await Job(server, id);
        var info = JsonDocument.Parse(job.GetProperty("result").GetProperty("info").GetString()!).RootElement;
        Assert.Equal("fast B", info.GetProperty("infotexts")[0].GetString());
        Assert.Equal([id], await Completions(redis));
        Assert.Equal(1, fast.Started);
        var stored = JsonDocument.Parse((string)(await redis.Db.StringGetAsync($"sharpdiffusion:job:{id}:result"))!).RootElement;
        Assert.Contains("fast B", stored.GetProperty("response").GetProperty("info").GetString());
        Assert.Equal(0, await redis.Db.StreamLengthAsync("sharpdiffusion:jobs"));
    }

    private sealed class NoGenerationHere : IImageGenerationBackend
    {
        public Task<ImageJobResult> GenerateAsync(ImageJob job, IProgress<ImageJobProgress> progress, JobControl control) =>
            throw new InvalidOperationException("the HTTP server generated an image itself instead of leaving it to a worker");

        public Task<EmbeddingListing> ListEmbeddingsAsync(CheckpointEntry checkpoint, CancellationToken cancellationToken) => Task.FromResult(new EmbeddingListing([], []));

        public void Unload() { }
    }

    [Fact]
    public async Task ASlowLiveJobIsNotTakenOver()
    {
        await using var redis = await RedisTestServer.StartAsync();
        await using var server = await TestServer.StartAsync(queue: redis.Url);
        var id = await Submit(server, new { prompt = "slow", steps = 2, seed = 9, width = 8, height = 8 });
        var slow = new GatedBackend("A");
        var other = new GatedBackend("B");
        other.Release();
        var claimAfter = TimeSpan.FromSeconds(3); // a heartbeat every second: a loaded machine has 2 s of slack
        await using var a = new InProcessWorker(redis.Url, server.ModelsDir, "A", slow, claimAfter);
        await WaitFor(() => Task.FromResult(slow.Started == 1), "A to take the job");
        await using var b = new InProcessWorker(redis.Url, server.ModelsDir, "B", other, claimAfter);
        // A's job runs for over three claim times; its heartbeat keeps it A's, so B, idle all along, never takes it.
        await Task.Delay(claimAfter * 3.5);
        slow.Release();
        await WaitFor(async () => (await Job(server, id)).GetProperty("state").GetString() == "done", "A to finish the job");
        Assert.Equal(0, other.Started);
        Assert.Equal(1, (int)await redis.Db.HashGetAsync("sharpdiffusion:job:" + id, "attempts"));
        Assert.Equal("A", (string?)await redis.Db.HashGetAsync("sharpdiffusion:job:" + id, "worker"));
        Assert.Equal([id], await Completions(redis));
    }

    [Theory]
    [InlineData("serve", "http://localhost:6379", 2, "--queue: 'http://localhost:6379' is not memory or redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]")]
    [InlineData("serve", "redis://secret@localhost:6379", 2, "--queue: 'redis://secret@localhost:6379' is not memory or redis://")]
    [InlineData("worker", "redis://127.0.0.1:6379/db", 2, "--queue: 'redis://127.0.0.1:6379/db' is not memory or redis://")]
    [InlineData("worker", "redis://:s3cret@127.0.0.1:1/2", 4, "--queue redis://:***@127.0.0.1:1/2: cannot reach Redis")]
    [InlineData("serve", "redis://:s3cret@127.0.0.1:1/2", 4, "--queue redis://:***@127.0.0.1:1/2: cannot reach Redis")]
    [InlineData("worker", "memory", 2, "--queue: a worker needs redis://HOST:PORT, not 'memory'")]
    [InlineData("worker", "redis://127.0.0.1:1", 4, "--queue redis://127.0.0.1:1: cannot reach Redis")]
    [InlineData("serve", "redis://127.0.0.1:1", 4, "--queue redis://127.0.0.1:1: cannot reach Redis")]
    public void BadOrUnreachableQueuesAreOneLine(string command, string queue, int code, string message)
    {
        var models = Path.Combine(Path.GetTempPath(), "sdredis-cli-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(models);
        try
        {
            var stderr = new StringWriter();
            string[] args = command == "serve" ? [command, "--models-dir", models, "--queue", queue, "--listen", "127.0.0.1:0"] : [command, "--models-dir", models, "--queue", queue];
            int exit = CliApp.Run(args, new StringWriter(), stderr);
            Assert.Equal(code, exit);
            Assert.Contains(message, stderr.ToString());
            Assert.Single(stderr.ToString().Trim().Split('\n'));
        }
        finally
        {
            Directory.Delete(models, recursive: true);
        }
    }

    [Theory]
    [InlineData("redis://localhost", "localhost", 6379, null, null, 0, false)]
    [InlineData("redis://10.0.0.5:6380/3", "10.0.0.5", 6380, null, null, 3, false)]
    [InlineData("redis://:p%40ss%3Aword@host:7000", "host", 7000, null, "p@ss:word", 0, false)]
    [InlineData("rediss://alice:pw@cache.example:6390/1", "cache.example", 6390, "alice", "pw", 1, true)]
    [InlineData("redis://[::1]:6379", "::1", 6379, null, null, 0, false)]
    public void RedisUrisAreReadAsRedisPyReadsThem(string uri, string host, int port, string? user, string? password, int database, bool tls)
    {
        var address = RedisAddress.Parse(uri)!;
        Assert.Equal(new RedisAddress(host, port, user, password, database, tls), address);
        if (password != null) Assert.DoesNotContain(password, address.ToString());
        Assert.Null(RedisAddress.Parse("memory"));
    }

    [Fact]
    public async Task APasswordProtectedRedisDatabaseCarriesTheJobsAndAWrongPasswordIsExitFour()
    {
        await using var redis = await RedisTestServer.StartAsync(password: "s3cret:/@");
        string url = redis.Url + "/5";
        await using var server = await TestServer.StartAsync(queue: url, backend: new NoGenerationHere());
        await using var worker = new InProcessWorker(url, server.ModelsDir, "w");
        var (status, body) = await server.PostAsync("/sdapi/v1/txt2img", new { prompt = "a red fox", steps = 2, sampler_name = "Euler", seed = 1, width = 16, height = 16 });
        Assert.True(status == 200, body.ToString());
        // The jobs live in database 5 only.
        var completed = await redis.Connection.GetDatabase(5).ListRangeAsync("sharpdiffusion:completed");
        Assert.Single(completed);
        Assert.False(await redis.Db.KeyExistsAsync("sharpdiffusion:completed"));

        var stderr = new StringWriter();
        int exit = CliApp.Run(["worker", "--models-dir", server.ModelsDir, "--queue", $"redis://:wrong@127.0.0.1:{redis.Port}/5"], new StringWriter(), stderr);
        Assert.Equal(4, exit);
        Assert.Contains($"--queue redis://:***@127.0.0.1:{redis.Port}/5: cannot reach Redis", stderr.ToString());
        Assert.DoesNotContain("wrong", stderr.ToString());
        Assert.Single(stderr.ToString().Trim().Split('\n'));
    }
}
