using System.Diagnostics;
using SharpDiffusion.Cli;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Hashing;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

/// <summary>A merge killed while it writes leaves no file under the output name; a later run is unaffected.</summary>
public sealed class MergeCrashTests
{
    [Fact]
    public void Killing_the_merge_mid_write_leaves_no_output_file()
    {
        using var dir = new TempDir();
        // Two sparse 768 MiB checkpoints (holes read as zeros): big enough that the write takes a while.
        var tensors = Enumerable.Range(0, 24)
            .Select(i => new TensorInfo($"model.diffusion_model.input_blocks.{i % 12}.{i / 12}.weight", TensorDType.F32, [1024, 1024, 8]))
            .ToList();
        string a = dir.File("a.safetensors"), b = dir.File("b.safetensors"), output = dir.File("merged.safetensors");
        SafetensorsWriter.WriteSparse(a, tensors);
        SafetensorsWriter.WriteSparse(b, tensors);

        string cli = typeof(CliApp).Assembly.Location;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { cli, "merge", "--model-a", a, "--model-b", b, "--multiplier", "0.5", "--out", output })
            start.ArgumentList.Add(arg);
        start.Environment[HashCache.CacheDirVariable] = dir.File("cache");

        using var child = Process.Start(start)!;
        var watch = Stopwatch.StartNew();
        string? temp = null;
        while (watch.Elapsed < TimeSpan.FromSeconds(120) && !child.HasExited)
        {
            temp = Directory.GetFiles(dir.Path, "merged.safetensors.tmp-*").FirstOrDefault();
            if (temp != null && new FileInfo(temp).Length > 16 << 20) break;
            Thread.Sleep(5);
        }
        if (child.HasExited) Assert.Fail("the merge ended before it could be interrupted: " + child.StandardError.ReadToEnd());
        child.Kill(entireProcessTree: true);
        child.WaitForExit();

        Assert.NotNull(temp);
        Assert.False(File.Exists(output));
        Assert.All(Directory.GetFiles(dir.Path, "merged*"), f => Assert.Contains(".tmp-", Path.GetFileName(f)));

        // A later run ignores the leftover temporary file and writes a complete output.
        var result = ModelMerger.Merge(new MergeOptions
        {
            ModelA = a, ModelB = b, Multiplier = 0.5, Output = output,
            Hasher = _ => new ModelHashes(new string('0', 64), "00000000", null),
        });
        Assert.Equal(24, result.Merged);
        using var merged = ModelFileReader.Open(output);
        Assert.Equal(tensors.Select(t => t.Name), merged.Tensors.Select(t => t.Name));
        Assert.True(new FileInfo(output).Length > tensors.Sum(t => t.ByteLength));
    }
}
