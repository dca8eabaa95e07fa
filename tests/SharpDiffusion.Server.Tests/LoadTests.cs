using System.Diagnostics;
using System.Text.Json;
using Xunit.Abstractions;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// Many clients at once on the tiny SD1 model: every request is served, in the order it arrived, while the status
/// routes keep answering (no global lock held by a running job); an interrupt ends only the running job.
/// Latencies are printed, not asserted (beyond a bound that only a lock held for a whole job would break).
/// </summary>
public class LoadTests(ITestOutputHelper output)
{
    private static object Request(int i) => new { prompt = $"load {i:D2}", steps = 3, sampler_name = "Euler", seed = 100 + i, width = 16, height = 16 };

    private static async Task WaitFor(Func<bool> condition, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > TimeSpan.FromMinutes(2)) Assert.Fail("timed out waiting for " + what);
            await Task.Delay(10);
        }
    }

    [Fact]
    public async Task TwentyConcurrentTxt2ImgRequestsAllSucceedInArrivalOrderWhileStatusRoutesAnswer()
    {
        GatedBackend? gated = null;
        await using var server = await TestServer.StartAsync(backendFactory: o => gated = new GatedBackend(o) { GateStep = 1, GatedPrompt = "load 00" });
        using var backend = gated!;
        // The first job holds at its first step, so the other 19 queue behind it in the order they were sent.
        var requests = new List<Task<(int Status, JsonElement Json)>> { server.PostAsync("/sdapi/v1/txt2img", Request(0)) };
        await backend.WaitAtGateAsync();
        for (int i = 1; i < 20; i++)
        {
            requests.Add(server.PostAsync("/sdapi/v1/txt2img", Request(i)));
            int queued = i;
            await WaitFor(() => ((JobQueue)server.Context.Queue).QueuedCount == queued, $"request {i} to be queued");
        }

        // Status routes while a job is running and 19 wait.
        var latencies = new List<double>();
        async Task CheckStatusRoutes()
        {
            var watch = Stopwatch.StartNew();
            var (status, progress) = await server.GetAsync("/sdapi/v1/progress?skip_current_image=false");
            latencies.Add(watch.Elapsed.TotalSeconds);
            Assert.Equal(200, status);
            Assert.True(progress.GetProperty("state").TryGetProperty("sampling_step", out _));
            watch.Restart();
            var (optionsStatus, options) = await server.GetAsync("/sdapi/v1/options");
            latencies.Add(watch.Elapsed.TotalSeconds);
            Assert.Equal(200, optionsStatus);
            Assert.StartsWith("tiny_sd1.safetensors", options.GetProperty("sd_model_checkpoint").GetString());
        }
        await CheckStatusRoutes();
        var (_, held) = await server.GetAsync("/sdapi/v1/progress");
        Assert.Equal(1, held.GetProperty("state").GetProperty("sampling_step").GetInt32());

        var total = Stopwatch.StartNew();
        backend.Release();
        while (!requests.All(r => r.IsCompleted)) await CheckStatusRoutes();
        total.Stop();

        for (int i = 0; i < 20; i++)
        {
            var (status, body) = await requests[i];
            Assert.True(status == 200, body.ToString());
            Assert.Equal(1, body.GetProperty("images").GetArrayLength());
            var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
            Assert.Equal(100 + i, info.GetProperty("seed").GetInt64());
        }
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"load {i:D2}"), backend.Started);
        // Generous: a status call waiting behind whole jobs (a global lock) would take far longer on 20 jobs.
        Assert.All(latencies, seconds => Assert.True(seconds < 10, $"a status route took {seconds:F2} s"));
        output.WriteLine($"20 jobs (3 steps, 16x16) in {total.Elapsed.TotalSeconds:F2} s after the first was released; " +
            $"{latencies.Count} /progress and /options calls meanwhile: max {latencies.Max() * 1000:F1} ms, mean {latencies.Average() * 1000:F1} ms");
    }

    [Fact]
    public async Task InterruptStopsOnlyTheRunningJob()
    {
        GatedBackend? gated = null;
        await using var server = await TestServer.StartAsync(backendFactory: o => gated = new GatedBackend(o) { GateStep = 1, GatedPrompt = "first" });
        using var backend = gated!;
        object Job(string prompt) => new { prompt, steps = 4, sampler_name = "Euler", seed = 9, width = 16, height = 16 };
        var first = server.PostAsync("/sdapi/v1/txt2img", Job("first"));
        await backend.WaitAtGateAsync();
        var second = server.PostAsync("/sdapi/v1/txt2img", Job("second"));
        await WaitFor(() => ((JobQueue)server.Context.Queue).QueuedCount == 1, "the second job to be queued");

        Assert.Equal(200, (await server.PostAsync("/sdapi/v1/interrupt", new { })).Status);
        backend.GateStep = 0; // the reruns below go through
        backend.Release();
        var (firstStatus, firstBody) = await first;
        Assert.Equal(200, firstStatus);
        // As A1111, an interrupted job answers with what it had: the latents after step 1, decoded.
        var stopped = Convert.FromBase64String(firstBody.GetProperty("images")[0].GetString()!);

        var (secondStatus, secondBody) = await second;
        Assert.Equal(200, secondStatus);
        var image = Convert.FromBase64String(secondBody.GetProperty("images")[0].GetString()!);
        // The second job ran whole: the same image as the same request alone.
        async Task<byte[]> Alone(string prompt) =>
            Convert.FromBase64String((await server.PostAsync("/sdapi/v1/txt2img", Job(prompt))).Json.GetProperty("images")[0].GetString()!);
        Assert.Equal(await Alone("second"), image);
        // ...and the first was stopped early: its whole run gives another image.
        Assert.NotEqual(await Alone("first"), stopped);
    }
}
