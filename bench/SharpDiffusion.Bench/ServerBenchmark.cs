using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Server;

namespace SharpDiffusion.Bench;

/// <summary>
/// The HTTP server's cost on the tiny SD1 test model (tests/data/golden): the same txt2img job run straight through the
/// <see cref="GenerationService"/>, then one request at a time through <c>/sdapi/v1/txt2img</c> (the difference is the
/// per-request overhead: JSON, queue, PNG + base64), then N requests at once (requests/s) while /progress is polled every 50 ms.
/// </summary>
public static class ServerBenchmark
{
    public static void Run(TextWriter output, int requests, int steps, int size) => RunAsync(output, requests, steps, size).GetAwaiter().GetResult();

    private static async Task RunAsync(TextWriter output, int requests, int steps, int size)
    {
        var golden = FindGolden();
        var root = Path.Combine(Path.GetTempPath(), "sharpdiffusion-serverbench-" + Guid.NewGuid().ToString("N")[..8]);
        var checkpoints = Path.Combine(root, "models", "Stable-diffusion");
        Directory.CreateDirectory(checkpoints);
        try
        {
            var checkpoint = Path.Combine(checkpoints, "tiny_sd1.safetensors");
            File.Copy(Path.Combine(golden, "tiny_sd1.safetensors"), checkpoint);
            File.Copy(Path.Combine(golden, "tiny_sd1.config.json"), Path.Combine(checkpoints, "tiny_sd1.config.json"));
            var tokenizer = Path.Combine(golden, "clip");

            // Raw: the generation service alone (model loaded once, as the server keeps it).
            using (var service = new GenerationService(new SharpDiffusion.Hashing.FileHasher(new SharpDiffusion.Hashing.HashCache(Path.Combine(root, "raw-hashes.json")))))
            {
                var job = new GenerationJob
                {
                    Model = new ModelChoice(checkpoint, new CheckpointLoadOptions { ConfigPath = Path.Combine(checkpoints, "tiny_sd1.config.json"), TokenizerPath = tokenizer }),
                    ModelsDir = Path.Combine(root, "models"), // as the server runs its jobs (extra networks looked up)
                    Parameters = new GenerationRequest { Prompt = "a lighthouse", Steps = steps, Sampler = "Euler", Seed = 1, Width = size, Height = size },
                };
                service.Generate(job).Dispose(); // load + warm-up

                var app = SdServer.Build(new ServerOptions
                {
                    ModelsDir = Path.Combine(root, "models"), Listen = "127.0.0.1:0", OutputsDir = Path.Combine(root, "outputs"),
                    TokenizerPath = tokenizer, HashCacheFile = Path.Combine(root, "hashes.json"), MaxQueuedJobs = requests + 1,
                });
                await app.StartAsync();
                try
                {
                    using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(10) };
                    object Body(int seed) => new { prompt = "a lighthouse", steps, sampler_name = "Euler", seed, width = size, height = size };
                    (await client.PostAsJsonAsync("/sdapi/v1/txt2img", Body(0))).EnsureSuccessStatusCode(); // load + warm-up

                    // Raw and HTTP runs alternate, so that a busy machine's drift hits both alike; the overhead is the median pair difference.
                    var raw = new List<double>();
                    var http = new List<double>();
                    for (int i = 0; i < requests; i++)
                    {
                        var watch = Stopwatch.StartNew();
                        service.Generate(job with { Parameters = job.Parameters with { Seed = i } }).Dispose();
                        raw.Add(watch.Elapsed.TotalSeconds);
                        watch.Restart();
                        (await client.PostAsJsonAsync("/sdapi/v1/txt2img", Body(i))).EnsureSuccessStatusCode();
                        http.Add(watch.Elapsed.TotalSeconds);
                    }
                    Report(output, "generation service", requests, TimeSpan.FromSeconds(raw.Sum()), out _);
                    Report(output, "txt2img one at a time", requests, TimeSpan.FromSeconds(http.Sum()), out _);
                    var differences = raw.Zip(http, (r, h) => h - r).Order().ToList();
                    double median = differences[differences.Count / 2], medianRaw = raw.Order().ElementAt(raw.Count / 2);
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  per-request overhead over the raw job: median {median * 1000:F1} ms ({median / medianRaw * 100:F0} % of the median raw job), range {differences[0] * 1000:F0}..{differences[^1] * 1000:F0} ms"));

                    var concurrent = Stopwatch.StartNew();
                    var all = Enumerable.Range(0, requests).Select(i => client.PostAsJsonAsync("/sdapi/v1/txt2img", Body(i))).ToList();
                    var progressTimes = new List<double>();
                    while (!all.All(t => t.IsCompleted))
                    {
                        var poll = Stopwatch.StartNew();
                        (await client.GetAsync("/sdapi/v1/progress?skip_current_image=false")).EnsureSuccessStatusCode();
                        progressTimes.Add(poll.Elapsed.TotalMilliseconds);
                        await Task.Delay(50); // a client's polling, not a busy loop competing for the CPU
                    }
                    foreach (var response in await Task.WhenAll(all)) response.EnsureSuccessStatusCode();
                    concurrent.Stop();
                    Report(output, $"txt2img {requests} at once", requests, concurrent.Elapsed, out _);
                    if (progressTimes.Count > 0)
                        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  /progress meanwhile: {progressTimes.Count} calls, mean {progressTimes.Average():F1} ms, max {progressTimes.Max():F1} ms"));
                }
                finally
                {
                    await app.StopAsync();
                    await app.DisposeAsync();
                }
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static void Report(TextWriter output, string what, int count, TimeSpan elapsed, out double secondsPerJob)
    {
        secondsPerJob = elapsed.TotalSeconds / count;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what}: {count} jobs in {elapsed.TotalSeconds:F2} s = {count / elapsed.TotalSeconds:F2} jobs/s, {secondsPerJob * 1000:F1} ms each"));
    }

    private static string FindGolden()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var golden = Path.Combine(dir.FullName, "tests", "data", "golden");
            if (File.Exists(Path.Combine(golden, "tiny_sd1.safetensors"))) return golden;
        }
        throw new FileNotFoundException("tests/data/golden/tiny_sd1.safetensors not found above " + AppContext.BaseDirectory);
    }
}
