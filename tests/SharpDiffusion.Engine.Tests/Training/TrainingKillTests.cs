using static SharpDiffusion.Engine.Tests.CliHarness;
using System.Diagnostics;
using System.Text;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using SkiaSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// The reliability promise of <c>train lora</c>: a training process killed with SIGKILL after it saved a checkpoint,
/// then run again with <c>--resume</c>, writes the same LoRA bit for bit as a run that was never interrupted. The
/// child is <c>dotnet</c> on the CLI assembly (no shell between), and every wait has a deadline so the test cannot hang.
/// </summary>
public class TrainingKillTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(180);

    private static string[] TrainArgs(string data, string output, params string[] extra) =>
    [
        "train", "lora", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
        "--tokenizer", TestPaths.GoldenFile("clip"), "--data", data, "--out", output, "--rank", "2", "--lr", "1e-2", "--max-steps", "60",
        "--seed", "9", "--resolution", "16", "--bucket-step", "8", "--save-every", "1", "--grad-accum", "2", .. extra,
    ];

    private static Dictionary<string, float[]> Tensors(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Tensors.ToDictionary(t => t.Name, t =>
        {
            using var v = TensorReading.Read(file, t, ScalarType.Float32);
            return v.data<float>().ToArray();
        });
    }

    [Fact]
    public void KilledWithSigkillThenResumedEndsBitIdenticalToAnUninterruptedRun()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data/1_toy"));
        ScheduleAndDataTests.WriteImage(dir.File("data/1_toy/a.png"), 16, 16, new SKColor(200, 40, 10));
        File.WriteAllText(dir.File("data/1_toy/a.txt"), "toy, red");
        ScheduleAndDataTests.WriteImage(dir.File("data/1_toy/b.png"), 16, 16, new SKColor(10, 90, 200));
        string data = dir.File("data");
        string killed = dir.File("killed.safetensors");
        string state = dir.File("killed.train/state.safetensors");

        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(CliApp).Assembly.Location);
        foreach (var arg in TrainArgs(data, killed)) start.ArgumentList.Add(arg);
        var stderr = new StringBuilder();
        using var child = Process.Start(start)!;
        // Drained asynchronously: a full pipe would stall the child and the test with it.
        child.OutputDataReceived += (_, _) => { };
        child.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        try
        {
            var watch = Stopwatch.StartNew();
            while (!File.Exists(state) && !child.HasExited && watch.Elapsed < Deadline) Thread.Sleep(5);
            Assert.False(child.HasExited, "training ended before it could be killed: " + stderr);
            Assert.True(File.Exists(state), $"no checkpoint within {Deadline.TotalSeconds} s: {stderr}");
            Kill9(child);
        }
        finally
        {
            if (!child.HasExited) Kill9(child);
        }
        Assert.True(child.HasExited, "the training process survived kill -9");
        Assert.NotEqual(0, child.ExitCode);
        Assert.False(File.Exists(killed), "the killed run had already written its LoRA: nothing was interrupted");
        long savedStep;
        using (var file = SafetensorsFile.Open(state)) savedStep = long.Parse(file.Metadata["step"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(savedStep, 1, 59);

        var resumed = Run(TrainArgs(data, killed, "--resume", dir.File("killed.train")));
        Assert.True(resumed.Code == 0, resumed.Stderr);
        var straight = Run(TrainArgs(data, dir.File("straight.safetensors")));
        Assert.True(straight.Code == 0, straight.Stderr);

        var a = Tensors(dir.File("straight.safetensors"));
        var b = Tensors(killed);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (name, values) in a) Assert.True(values.SequenceEqual(b[name]), $"{name} differs after kill -9 and resume from step {savedStep}");
    }

    /// <summary>SIGKILL by pid (<c>kill -9</c>), then Process.Kill if that failed; bounded waits either way.</summary>
    private static void Kill9(Process child)
    {
        using (var kill = Process.Start(new ProcessStartInfo("kill", ["-9", child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false }))
            kill?.WaitForExit(10_000);
        if (!child.WaitForExit(20_000))
        {
            child.Kill(entireProcessTree: true);
            child.WaitForExit(20_000);
        }
    }

}
