using SharpDiffusion.Engine.Diagnostics;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Bench;

/// <summary>The bench on the tiny random model: every phase measured, temporary files removed, CPU flags parsed.</summary>
public class BenchRunnerTests
{
    [Fact]
    public void TinyRandomModelIsMeasuredAndItsTemporaryFilesRemoved()
    {
        using var dir = new TempDir();
        var lines = new List<string>();
        var result = BenchRunner.Run(new BenchOptions
        {
            Architecture = RandomModelArchitecture.Tiny,
            Size = 32,
            Steps = 3,
            Precision = ScalarType.Float32,
            Threads = 1,
            TempFolder = dir.Path,
            TokenizerPath = TestPaths.GoldenFile("clip"),
        }, lines.Add);

        Assert.Empty(Directory.GetFiles(dir.Path));
        Assert.Equal("random tiny", result.Model);
        Assert.Equal(3, result.StepSeconds.Count);
        Assert.Equal((result.StepSeconds[1] + result.StepSeconds[2]) / 2, result.UNetStepSeconds, 9);
        Assert.All(new[] { result.WriteSeconds, result.LoadSeconds, result.TextEncodeSeconds, result.VaeDecodeSeconds }, s => Assert.True(s > 0));
        Assert.True(result.PeakRssMb > 50);
        Assert.Null(result.UNetGflops); // the FLOP count is SD1.5's
        Assert.Equal("tokenizer", result.TextInput);
        Assert.Equal("fp32", result.Precision);
        Assert.Equal(1, result.Threads);
        Assert.Empty(result.Notes); // finite image, NNPACK off, tokenizer found
        Assert.Contains(lines, l => l.StartsWith("sampling 3 guided step(s) at 32x32", StringComparison.Ordinal));
    }

    [Fact]
    public void EverySamplerIsTimedWithItsModelCalls()
    {
        using var dir = new TempDir();
        var result = BenchRunner.RunSamplers(new BenchOptions
        {
            Architecture = RandomModelArchitecture.Tiny, Size = 32, Steps = 4, Precision = ScalarType.Float32, Threads = 1,
            TempFolder = dir.Path, TokenizerPath = TestPaths.GoldenFile("clip"),
        });
        Assert.Empty(Directory.GetFiles(dir.Path));
        Assert.Equal(Engine.Sampling.SamplerRegistry.Names, result.Samplers.Select(r => r.Sampler).ToArray());
        Assert.All(result.Samplers, r => Assert.True(r.Seconds > 0 && r.Steps == 4, r.Sampler));
        Assert.Empty(result.Notes);
        var calls = result.Samplers.ToDictionary(r => r.Sampler, r => r.ModelCalls);
        // One guided call per step; second-order samplers two, but one on the last step to sigma 0 (4 steps: 7); the
        // timestep samplers stop one step early (DDIM, DDIM CFG++: 3), PLMS's first step makes two; DPM adaptive three per attempt.
        foreach (var name in new[] { "DPM++ 2M", "Euler a", "Euler", "LMS", "DPM fast", "PLMS", "UniPC", "LCM", "DPM++ 2M SDE", "DPM++ 3M SDE", "DDIM CFG++" })
            Assert.True(calls[name] == (name == "DDIM CFG++" ? 3 : 4), $"{name}: {calls[name]} calls");
        foreach (var name in new[] { "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ SDE", "Restart" })
            Assert.True(calls[name] == 7, $"{name}: {calls[name]} calls");
        Assert.Equal(3, calls["DDIM"]);
        // DPM adaptive picks its own steps: timed over at most 3 calls per requested step.
        var adaptive = result.Samplers.Single(r => r.Sampler == "DPM adaptive");
        Assert.True(adaptive.ModelCalls % 3 == 0 && adaptive.ModelCalls is >= 3 and <= 12, $"DPM adaptive: {adaptive.ModelCalls} calls");
        if (adaptive.StoppedAtCallBudget) Assert.Equal(12, adaptive.ModelCalls);
        Assert.True(result.Samplers.Where(r => r != adaptive).All(r => !r.StoppedAtCallBudget));
    }

    [Fact]
    public void SamplerBenchTakesASubsetAndEachSamplersMinimumSteps()
    {
        var (code, stdout, stderr) = CliHarness.Run("bench", "--arch", "tiny", "--size", "32", "--steps", "2", "--precision", "fp32", "--threads", "1",
            "--tokenizer", TestPaths.GoldenFile("clip"), "--samplers", "--sampler", "unipc,Euler", "--json");
        Assert.True(code == 0, stderr);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        var rows = json.RootElement.GetProperty("samplers").EnumerateArray().ToList();
        Assert.Equal(["UniPC", "Euler"], rows.Select(r => r.GetProperty("sampler").GetString()));
        // UniPC (order 3) runs its minimum of 3 steps; Euler the 2 asked for, one call each.
        Assert.Equal(3, rows[0].GetProperty("steps").GetInt32());
        Assert.True(rows[0].GetProperty("model_calls").GetInt32() >= 3);
        Assert.Equal((2, 2), (rows[1].GetProperty("steps").GetInt32(), rows[1].GetProperty("model_calls").GetInt32()));

        (code, _, stderr) = CliHarness.Run("bench", "--arch", "tiny", "--size", "32", "--samplers", "--sampler", "Euler,Nope");
        Assert.Equal(2, code);
        Assert.Contains("Nope", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public void SamplerBenchPrintsJson()
    {
        using var dir = new TempDir();
        var (code, stdout, stderr) = CliHarness.Run("bench", "--arch", "tiny", "--size", "32", "--steps", "3", "--precision", "fp32", "--threads", "1",
            "--tokenizer", TestPaths.GoldenFile("clip"), "--samplers", "--json");
        Assert.True(code == 0, stderr);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        var rows = json.RootElement.GetProperty("samplers").EnumerateArray().ToList();
        Assert.Equal(20, rows.Count);
        Assert.Equal("DPM++ 2M", rows[0].GetProperty("sampler").GetString());
        Assert.Equal(3, rows[0].GetProperty("model_calls").GetInt32());
        Assert.True(rows.All(r => r.GetProperty("s_per_call").GetDouble() > 0));
        Assert.True(rows.All(r => r.GetProperty("stopped_at_call_budget").GetBoolean()
            ? r.GetProperty("s_per_step").ValueKind == System.Text.Json.JsonValueKind.Null
            : r.GetProperty("s_per_step").GetDouble() > 0));
    }

    /// <summary>
    /// bench train on the tiny random model: the three real trainers each take a warm-up step and two timed steps; the
    /// LoRA's loss is finite and the JSON carries the ratio to the inference step.
    /// </summary>
    [Fact]
    public void TrainBenchTimesEveryTrainerBesideAnInferenceStep()
    {
        using var dir = new TempDir();
        var lines = new List<string>();
        var result = BenchRunner.RunTraining(new BenchOptions
        {
            Architecture = RandomModelArchitecture.Tiny, Size = 32, Steps = 2, Precision = ScalarType.Float32, Threads = 1,
            TempFolder = dir.Path, TokenizerPath = TestPaths.GoldenFile("clip"),
        }, new TrainBenchOptions { Rank = 4 }, lines.Add);
        Assert.Empty(Directory.GetFiles(dir.Path));
        Assert.Empty(result.Notes);
        Assert.Equal(["lora", "embedding", "hypernetwork"], result.Trainers.Select(t => t.Kind).ToArray());
        Assert.All(result.Trainers, t => Assert.True(t.StepSeconds.Count == 2 && t.StepSeconds.All(s => s > 0) && t.PeakRssMb > 50, t.Kind));
        Assert.True(result.InferenceStepSeconds > 0);
        Assert.Equal("lora rank 4", result.LoraShape);
        // Each trainer reported its three steps (warm-up + 2) with a finite loss.
        foreach (var kind in new[] { "lora", "embedding", "hypernetwork" })
            Assert.Contains(lines, l => l.StartsWith($"training: {kind}", StringComparison.Ordinal));
        Assert.Equal(3 * 3, lines.Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^  step [123]/3: [0-9.]+ s, loss [0-9.]+$")));
        Assert.DoesNotContain(lines, l => l.Contains("NaN", StringComparison.Ordinal));

        var (code, stdout, stderr) = CliHarness.Run("bench", "train", "--arch", "tiny", "--size", "32", "--steps", "1", "--precision", "fp32", "--threads", "1",
            "--tokenizer", TestPaths.GoldenFile("clip"), "--trainers", "lora", "--rank", "2", "--algo", "locon", "--json");
        Assert.True(code == 0, stderr);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        var lora = Assert.Single(json.RootElement.GetProperty("trainers").EnumerateArray());
        Assert.Equal("locon rank 2", json.RootElement.GetProperty("lora").GetString());
        // The ratio is computed before the figures are rounded for printing: equal to the printed figures' within their rounding.
        double ratio = lora.GetProperty("s_per_step").GetDouble() / json.RootElement.GetProperty("inference_step_s").GetDouble();
        double printed = lora.GetProperty("x_inference_step").GetDouble();
        Assert.True(Math.Abs(ratio - printed) <= 0.1 * printed + 0.01, $"x_inference_step {printed} vs {ratio:F3} from the printed times");

        (code, _, stderr) = CliHarness.Run("bench", "train", "--arch", "tiny", "--size", "32", "--trainers", "dreambooth");
        Assert.Equal(2, code);
        Assert.Contains("--trainers dreambooth: name lora, embedding and/or hypernetwork", stderr);
    }

    [Fact]
    public void SizesTheModelCannotTakeAreRejected()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ArgumentException>(() => BenchRunner.Run(new BenchOptions
        {
            Architecture = RandomModelArchitecture.Tiny, Size = 18, Steps = 1, Precision = ScalarType.Float32, Threads = 1, TempFolder = dir.Path,
        }));
        Assert.Equal("--size 18: must be a positive multiple of 4 for this model", e.Message);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void NnpackCanBeSwitchedOffInTheBundledLibtorch()
    {
        Assert.True(NnpackSwitch.Disable());
        Assert.True(NnpackSwitch.Disable()); // idempotent
    }

    [Fact]
    public void CpuFlagsComeFromTheFirstFlagsLine()
    {
        var features = BenchCpuFeatures.Parse(new[]
        {
            "processor\t: 0",
            "flags\t\t: fpu sse2 avx2 fma avx512f avx512_bf16 amx_tile",
            "flags\t\t: amx_bf16",
        });
        Assert.Equal(new[] { "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile" }, features.Flags);
        Assert.True(features.HasFastBf16);
        Assert.False(BenchCpuFeatures.Parse(new[] { "flags : avx2 fma avx512f" }).HasFastBf16);
        Assert.Empty(BenchCpuFeatures.Parse(new[] { "model name : x" }).Flags);
    }
}
