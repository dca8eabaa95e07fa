using System.Diagnostics;
using SharpDiffusion.Engine.Pipeline;
using TorchSharp;
using Xunit.Abstractions;

namespace SharpDiffusion.Engine.Tests.Pipeline;

/// <summary>Runs alone: RSS is process-wide, so tests running beside it would move it.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryStabilityCollection
{
    public const string Name = "memory stability";
}

/// <summary>
/// 100 sampler steps (5 jobs x 20) on the tiny golden model leak nothing: the thread's count of live torch tensors
/// is the same after every job, and the resident set grows by less than 50 MB after the first (warm-up) job.
/// </summary>
[Collection(MemoryStabilityCollection.Name)]
public class MemoryStabilityTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("Euler a")]
    [InlineData("DPM++ 2M")]
    public void RepeatedJobsLeaveNoLiveTensorsBehind(string sampler)
    {
        using var model = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
        });
        var liveCounts = new List<long>();
        var rssMb = new List<double>();
        for (int job = 0; job < 5; job++)
        {
            var request = new GenerationRequest
            {
                Prompt = "a photograph of an astronaut riding a horse",
                NegativePrompt = "blurry",
                Steps = 20,
                Sampler = sampler,
                Seed = 42 + job,
                Width = 16,
                Height = 16,
                BatchSize = 2,
            };
            using (var result = ImageGenerator.Generate(model, request))
                Assert.Equal(2, result.Images.Count);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            liveCounts.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount);
            using var process = Process.GetCurrentProcess();
            rssMb.Add(process.WorkingSet64 / (1024.0 * 1024.0));
        }
        output.WriteLine("live tensors after each job: " + string.Join(", ", liveCounts));
        output.WriteLine("RSS MB after each job: " + string.Join(", ", rssMb.Select(r => r.ToString("F1"))));
        Assert.All(liveCounts.Skip(1), count => Assert.Equal(liveCounts[0], count));
        Assert.True(rssMb[^1] - rssMb[0] < 50, $"RSS grew by {rssMb[^1] - rssMb[0]:F1} MB over jobs 2-5");
    }
}
