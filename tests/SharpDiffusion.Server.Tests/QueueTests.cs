using SharpDiffusion.Architectures;
using System.Collections.Concurrent;
using System.Text.Json;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// The queue's order, progress, interrupt/skip and limits, with a backend that steps only when the test says so
/// (a real model would make timing-dependent tests).
/// </summary>
public class QueueTests
{
    /// <summary>Each job's steps wait for <see cref="Step"/>; the prompts of started jobs are recorded in order.</summary>
    private sealed class SteppedBackend : IImageGenerationBackend
    {
        private readonly SemaphoreSlim _steps = new(0);
        public ConcurrentQueue<string> Started { get; } = new();

        public void Step(int count = 1) => _steps.Release(count);

        public async Task<ImageJobResult> GenerateAsync(ImageJob job, IProgress<ImageJobProgress> progress, JobControl control)
        {
            Started.Enqueue(job.Prompt);
            var images = new List<GeneratedImage>();
            for (int batch = 0; batch < job.Iterations && !control.IsInterrupted; batch++)
            {
                var token = control.BeginBatch();
                try
                {
                    for (int step = 0; step < job.Steps; step++)
                    {
                        await _steps.WaitAsync(token);
                        // A 2x1 latent preview: pixel 0 is latent channel 0 = 1, pixel 1 is all zeros.
                        progress.Report(new ImageJobProgress(batch, job.Iterations, step + 1, job.Steps)
                        {
                            PreviewRgb = LatentPreview.ToRgb([1, 0, 0, 0, 0, 0, 0, 0], 2, 1, ModelArchitectures.Sd1), PreviewWidth = 2, PreviewHeight = 1,
                        });
                    }
                }
                catch (OperationCanceledException)
                {
                    continue;
                }
                images.Add(new GeneratedImage(new byte[job.Width * job.Height * 3], job.Width, job.Height, job.Seed + batch, $"{job.Prompt}\nSeed: {job.Seed + batch}"));
            }
            return new ImageJobResult(images, [], control.IsInterrupted);
        }

        public Task<EmbeddingListing> ListEmbeddingsAsync(CheckpointEntry checkpoint, CancellationToken cancellationToken) =>
            Task.FromResult(new EmbeddingListing([], []));

        public void Unload() { }
    }

    private static object Job(string prompt, int steps = 4, int iterations = 1) =>
        new { prompt, steps, n_iter = iterations, width = 8, height = 8, seed = 100 };

    private static async Task WaitFor(Func<Task<bool>> condition, string what)
    {
        for (int i = 0; i < 500; i++)
        {
            if (await condition()) return;
            await Task.Delay(20);
        }
        Assert.Fail("timed out waiting for " + what);
    }

    [Fact]
    public async Task ProgressFollowsTheRunningJobAndInterruptStopsOnlyIt()
    {
        var backend = new SteppedBackend();
        await using var server = await TestServer.StartAsync(backend: backend);
        var first = server.PostAsync("/sdapi/v1/txt2img", Job("first", steps: 4, iterations: 2));
        await WaitFor(() => Task.FromResult(backend.Started.Count == 1), "the first job to start");
        var second = server.PostAsync("/sdapi/v1/txt2img", Job("second", steps: 2));

        backend.Step(2);
        await WaitFor(async () => (await server.GetAsync("/sdapi/v1/progress")).Json.GetProperty("state").GetProperty("sampling_step").GetInt32() == 2, "step 2");
        var (_, progress) = await server.GetAsync("/sdapi/v1/progress");
        var state = progress.GetProperty("state");
        Assert.Equal(2, state.GetProperty("job_count").GetInt32());
        Assert.Equal(0, state.GetProperty("job_no").GetInt32());
        Assert.Equal(4, state.GetProperty("sampling_steps").GetInt32());
        Assert.Equal("scripts_txt2img", state.GetProperty("job").GetString());
        Assert.Equal(0.01 + 0.5 * 2 / 4, progress.GetProperty("progress").GetDouble(), 6); // A1111's formula
        Assert.True(progress.GetProperty("eta_relative").GetDouble() >= 0);
        var preview = Convert.FromBase64String(progress.GetProperty("current_image").GetString()!);
        Assert.Equal([137, 80, 78, 71], preview[..4]); // a PNG
        Assert.Equal(2, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(preview.AsSpan(16)));
        var (_, withoutImage) = await server.GetAsync("/sdapi/v1/progress?skip_current_image=true");
        Assert.Equal(JsonValueKind.Null, withoutImage.GetProperty("current_image").ValueKind);

        Assert.Equal(200, (await server.PostAsync("/sdapi/v1/interrupt", new { })).Status);
        var (firstStatus, firstBody) = await first;
        Assert.Equal(200, firstStatus);
        Assert.Equal(0, firstBody.GetProperty("images").GetArrayLength()); // interrupted in its first batch

        // The second job was not touched by the interrupt: it runs to the end.
        await WaitFor(() => Task.FromResult(backend.Started.Count == 2), "the second job to start");
        backend.Step(2);
        var (secondStatus, secondBody) = await second;
        Assert.Equal(200, secondStatus);
        Assert.Equal(1, secondBody.GetProperty("images").GetArrayLength());
        Assert.Equal(["first", "second"], backend.Started);
    }

    [Fact]
    public async Task SkipEndsOnlyTheCurrentBatch()
    {
        var backend = new SteppedBackend();
        await using var server = await TestServer.StartAsync(backend: backend);
        var job = server.PostAsync("/sdapi/v1/txt2img", Job("skipped", steps: 2, iterations: 2));
        await WaitFor(() => Task.FromResult(backend.Started.Count == 1), "the job to start");
        await server.PostAsync("/sdapi/v1/skip", new { });
        backend.Step(2);
        var (status, body) = await job;
        Assert.Equal(200, status);
        var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
        Assert.Equal(1, body.GetProperty("images").GetArrayLength());
        Assert.Equal("skipped\nSeed: 101", info.GetProperty("infotexts")[0].GetString()); // the second batch's seed
    }

    [Fact]
    public async Task AFullQueueAnswers503AndDeleteCancelsAWaitingJob()
    {
        var backend = new SteppedBackend();
        await using var server = await TestServer.StartAsync(backend: backend, maxQueue: 1);
        var (_, running) = await server.PostAsync("/v2/jobs", Job("running", steps: 1));
        await WaitFor(() => Task.FromResult(backend.Started.Count == 1), "the first job to start");
        var (status, waiting) = await server.PostAsync("/v2/jobs", Job("waiting", steps: 1));
        Assert.Equal(202, status);
        using (var refused = await server.Client.PostAsync("/v2/jobs", new StringContent(JsonSerializer.Serialize(Job("refused", steps: 1)), System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Equal(503, (int)refused.StatusCode);
            Assert.Equal("5", refused.Headers.GetValues("Retry-After").Single());
            Assert.Contains("queue is full", await refused.Content.ReadAsStringAsync());
        }

        using var delete = await server.Client.DeleteAsync("/v2/jobs/" + waiting.GetProperty("id").GetString());
        Assert.Equal(200, (int)delete.StatusCode);
        backend.Step(1);
        var id = running.GetProperty("id").GetString();
        await WaitFor(async () => (await server.GetAsync("/v2/jobs/" + id)).Json.GetProperty("state").GetString() == "done", "the first job to finish");
        var (_, cancelled) = await server.GetAsync("/v2/jobs/" + waiting.GetProperty("id").GetString());
        Assert.Equal("cancelled", cancelled.GetProperty("state").GetString());
        Assert.Equal(["running"], backend.Started);
    }

    [Fact]
    public async Task JobEventsStreamProgressThenTheResult()
    {
        var backend = new SteppedBackend();
        await using var server = await TestServer.StartAsync(backend: backend);
        var (_, created) = await server.PostAsync("/v2/jobs", Job("streamed", steps: 3));
        var id = created.GetProperty("id").GetString();
        using var response = await server.Client.GetAsync($"/v2/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<(string Name, JsonElement Data)>();
        string? name = null;
        backend.Step(3);
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add((name!, JsonDocument.Parse(line[6..]).RootElement.Clone()));
            if (name == "done" && events.Count > 0 && events[^1].Name == "done") break;
        }
        Assert.All(events.SkipLast(1), e => Assert.Equal("progress", e.Name));
        var done = events[^1];
        Assert.Equal("done", done.Name);
        Assert.Equal("done", done.Data.GetProperty("state").GetString());
        Assert.Equal(3, done.Data.GetProperty("sampling_step").GetInt32());
        Assert.Equal(1, done.Data.GetProperty("result").GetProperty("images").GetArrayLength());
    }
}
