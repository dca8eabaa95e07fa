using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Hashing;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Bench;

/// <summary>
/// Merge throughput: two fp16 checkpoints with the real SD1.5 single-file key layout (tests/data/reference/
/// sd15_single_file.tsv, about 2.1 GB each in fp16) filled once with random values, then merged (weighted sum, fp16
/// output) cold (inputs evicted from the page cache with posix_fadvise DONTNEED) and warm. Reports MB/s of output
/// written and of input read, and the process's peak resident set (Process.PeakWorkingSet64) against one model's size.
/// The input files are kept between runs (SHARPDIFFUSION_BENCH_DIR, default the temp folder); the output is deleted.
/// Hashing the inputs for the recipe is left out (a stub hasher): it is the hash benchmark's subject.
/// </summary>
public static class MergeBenchmark
{
    /// <param name="warmRuns">How many warm merges to time after the cold one (the machine is shared: take the best).</param>
    public static void Run(TextWriter output, int warmRuns = 1)
    {
        string folder = Environment.GetEnvironmentVariable("SHARPDIFFUSION_BENCH_DIR") ?? Path.GetTempPath();
        string layout = FindLayout();
        var tensors = ReadLayout(layout);
        string a = Path.Combine(folder, "sharpdiffusion-mergebench-a.safetensors");
        string b = Path.Combine(folder, "sharpdiffusion-mergebench-b.safetensors");
        string merged = Path.Combine(folder, $"sharpdiffusion-mergebench-out-{Guid.NewGuid():N}.safetensors");
        foreach (var (path, seed) in new[] { (a, 1), (b, 2) })
        {
            if (File.Exists(path) && Matches(path, tensors)) continue;
            var write = Stopwatch.StartNew();
            WriteRandom(path, tensors, seed);
            output.WriteLine($"wrote {Path.GetFileName(path)} ({new FileInfo(path).Length / 1e6:F0} MB) in {write.Elapsed.TotalSeconds:F1} s");
        }
        long modelBytes = new FileInfo(a).Length;
        var stub = new ModelHashes(new string('0', 64), "00000000", null);
        try
        {
            var warmSeconds = new List<double>();
            foreach (bool cold in new[] { true }.Concat(Enumerable.Repeat(false, Math.Max(1, warmRuns))))
            {
                bool evicted = cold && Evict(a) && Evict(b);
                GC.Collect();
                GC.WaitForPendingFinalizers();
                bool peakReset = ResetPeak();
                long rssBefore = CurrentProcessPeak();
                var (cpuBefore, userBefore) = (CpuTime(), UserTime());
                var watch = Stopwatch.StartNew();
                var result = ModelMerger.Merge(new MergeOptions
                {
                    ModelA = a, ModelB = b, Multiplier = 0.5, Precision = TensorDType.F16, Output = merged, Hasher = _ => stub,
                });
                watch.Stop();
                double seconds = watch.Elapsed.TotalSeconds;
                double cpuSeconds = (CpuTime() - cpuBefore).TotalSeconds, userSeconds = (UserTime() - userBefore).TotalSeconds;
                string label = cold ? (evicted ? "cold" : "first (page cache not evicted)") : "warm";
                if (!cold) warmSeconds.Add(seconds);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"merge {label}: {result.Tensors} tensors, {result.OutputBytes / 1e6:F0} MB out in {seconds:F2} s = {result.OutputBytes / 1e6 / seconds:F0} MB/s written, {2 * modelBytes / 1e6 / seconds:F0} MB/s read; CPU {cpuSeconds:F2} s ({userSeconds:F2} s user, both cores together)"));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  peak RSS {CurrentProcessPeak() / 1e6:F0} MB ({(peakReset ? "this merge" : "process lifetime")}; before the merge {rssBefore / 1e6:F0} MB; one model is {modelBytes / 1e6:F0} MB)"));
                File.Delete(merged);
            }
            if (warmSeconds.Count > 1)
            {
                var sorted = warmSeconds.Order().ToList();
                long outBytes = new FileInfo(a).Length;
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"warm best {sorted[0]:F2} s = {outBytes / 1e6 / sorted[0]:F0} MB/s written, median {sorted[sorted.Count / 2]:F2} s = {outBytes / 1e6 / sorted[sorted.Count / 2]:F0} MB/s"));
            }
            Context(output, a, b, merged);
            output.WriteLine($"machine: {Environment.ProcessorCount} cores, shared with other jobs; figures are indicative.");
        }
        finally
        {
            if (File.Exists(merged)) File.Delete(merged);
        }
    }

    /// <summary>
    /// What the disk and page cache allow, for comparison: reading both inputs as <c>cat A B &gt; /dev/null</c> does
    /// (warm) and copying one model to a new file with fsync, as the merge's atomic write ends.
    /// </summary>
    private static void Context(TextWriter output, string a, string b, string scratch)
    {
        var buffer = new byte[1 << 20];
        var watch = Stopwatch.StartNew();
        long read = 0;
        foreach (var path in new[] { a, b })
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            int n;
            while ((n = stream.Read(buffer)) > 0) read += n;
        }
        double readSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        try
        {
            using (var source = new FileStream(a, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan))
            using (var target = new FileStream(scratch, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1))
            {
                source.CopyTo(target, buffer.Length);
                target.Flush(flushToDisk: true);
            }
            double copySeconds = watch.Elapsed.TotalSeconds;
            long size = new FileInfo(a).Length;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"for comparison: reading A and B (warm, like cat A B > /dev/null) {read / 1e6 / readSeconds:F0} MB/s; copying A with fsync {size / 1e6 / copySeconds:F0} MB/s written"));
        }
        finally
        {
            File.Delete(scratch);
        }
    }

    /// <summary>Linux: writing 5 to /proc/self/clear_refs resets the peak resident set (VmHWM), so each merge reports its own peak.</summary>
    private static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>CPU time of this process (all threads, user and kernel): the merge's work, whatever else shares the machine.</summary>
    private static TimeSpan CpuTime()
    {
        using var self = Process.GetCurrentProcess();
        return self.TotalProcessorTime;
    }

    /// <summary>The user-mode part of <see cref="CpuTime"/>; the rest is the kernel (page cache copies, page faults).</summary>
    private static TimeSpan UserTime()
    {
        using var self = Process.GetCurrentProcess();
        return self.UserProcessorTime;
    }

    private static long CurrentProcessPeak()
    {
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        return self.PeakWorkingSet64;
    }

    private static string FindLayout()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "data", "reference", "sd15_single_file.tsv");
            if (File.Exists(Path.Combine(dir.FullName, "SharpDiffusion.slnx")) && File.Exists(candidate)) return Path.GetFullPath(candidate);
        }
        throw new FileNotFoundException("tests/data/reference/sd15_single_file.tsv not found in the repository");
    }

    /// <summary>Name, dtype and shape per line; float tensors become F16 (a pruned fp16 SD1.5 file), integers stay.</summary>
    private static List<TensorInfo> ReadLayout(string path)
    {
        var list = new List<TensorInfo>();
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split('\t');
            if (parts.Length < 3 || !TensorDTypeExtensions.TryParseSafetensorsName(parts[1], out var dtype)) continue;
            long[] shape = parts[2].Trim('[', ']').Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
            list.Add(new TensorInfo(parts[0], dtype.IsFloatingPoint() ? TensorDType.F16 : dtype, shape));
        }
        return list;
    }

    private static bool Matches(string path, List<TensorInfo> tensors)
    {
        try
        {
            using var file = SafetensorsFile.Open(path);
            return file.Tensors.Count == tensors.Count && file.Tensors.Zip(tensors).All(p => p.First.Name == p.Second.Name && p.First.DType == p.Second.DType);
        }
        catch (InvalidModelFileException)
        {
            return false;
        }
    }

    /// <summary>Random fp16 values with magnitudes between 2^-13 and 2^-10 times 1..2 (no NaN or infinity); integers count up.</summary>
    private static void WriteRandom(string path, List<TensorInfo> tensors, int seed)
    {
        var random = new Random(seed);
        SafetensorsWriter.Write(path, tensors.Select(t => new TensorToWrite(t.Name, t.DType, t.Shape, stream =>
        {
            var data = new byte[t.ByteLength];
            if (t.DType == TensorDType.F16)
            {
                random.NextBytes(data);
                var halves = MemoryMarshal.Cast<byte, ushort>(data.AsSpan());
                for (int i = 0; i < halves.Length; i++) halves[i] = (ushort)((halves[i] & 0x83FF) | ((2 + (halves[i] >> 10 & 3)) << 10));
            }
            else if (t.DType == TensorDType.I64)
            {
                var longs = MemoryMarshal.Cast<byte, long>(data.AsSpan());
                for (int i = 0; i < longs.Length; i++) longs[i] = i;
            }
            stream.Write(data);
        })), new Dictionary<string, string> { ["format"] = "pt" });
    }

    private static bool Evict(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        const int DontNeed = 4;
        return PosixFadvise((int)handle.DangerousGetHandle(), 0, 0, DontNeed) == 0;
    }

    [DllImport("libc", EntryPoint = "posix_fadvise", SetLastError = false)]
    private static extern int PosixFadvise(int fd, long offset, long length, int advice);
}
