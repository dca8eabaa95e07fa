using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using SharpDiffusion.Hashing;

namespace SharpDiffusion.Bench;

/// <summary>
/// Hash throughput: a safetensors file (default 2 GB of random data, so sha256, legacy and addnet are all computed)
/// hashed cold (page cache evicted with posix_fadvise DONTNEED) then warm, and a cached lookup. Prints MB/s.
/// </summary>
public static class HashBenchmark
{
    public const long DefaultSize = 2L * 1000 * 1000 * 1000;

    public static void Run(TextWriter output, string? path = null, long size = DefaultSize)
    {
        bool temporary = path == null;
        path ??= Path.Combine(Path.GetTempPath(), $"sharpdiffusion-hashbench-{Guid.NewGuid():N}.safetensors");
        try
        {
            if (temporary)
            {
                var write = Stopwatch.StartNew();
                WriteRandomSafetensors(path, size);
                output.WriteLine($"wrote {size / 1e6:F0} MB test file in {write.Elapsed.TotalSeconds:F1} s");
            }
            long length = new FileInfo(path).Length;

            bool evicted = EvictFromPageCache(path);
            var cold = Stopwatch.StartNew();
            var hashes = ModelHashes.Compute(path);
            cold.Stop();
            output.WriteLine($"hash {(evicted ? "cold" : "first (page cache not evicted)")}: {length / 1e6 / cold.Elapsed.TotalSeconds:F0} MB/s ({cold.Elapsed.TotalSeconds:F2} s)");

            var warm = Stopwatch.StartNew();
            var again = ModelHashes.Compute(path);
            warm.Stop();
            output.WriteLine($"hash warm: {length / 1e6 / warm.Elapsed.TotalSeconds:F0} MB/s ({warm.Elapsed.TotalSeconds:F2} s)");
            if (again != hashes) throw new InvalidOperationException("two hashes of the same file differ");

            string cacheFile = Path.Combine(Path.GetTempPath(), $"sharpdiffusion-hashbench-{Guid.NewGuid():N}.json");
            try
            {
                var cache = new HashCache(cacheFile);
                cache.Set(path, hashes);
                cache.Save();
                var lookup = Stopwatch.StartNew();
                var cached = new HashCache(cacheFile).GetOrCompute(path);
                lookup.Stop();
                output.WriteLine($"cached lookup (load cache + stat): {lookup.Elapsed.TotalMilliseconds:F2} ms, same hashes: {cached == hashes}");
            }
            finally
            {
                File.Delete(cacheFile);
            }
            output.WriteLine($"sha256 {hashes.Sha256}, legacy {hashes.Legacy}, addnet {hashes.AddNet}");
        }
        finally
        {
            if (temporary) File.Delete(path);
        }
    }

    private static void WriteRandomSafetensors(string path, long size)
    {
        long dataSize = size - 8 - 256;
        string header = $"{{\"data\":{{\"dtype\":\"U8\",\"shape\":[{dataSize}],\"data_offsets\":[0,{dataSize}]}}}}".PadRight(256);
        using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1);
        stream.Write(BitConverter.GetBytes(256UL));
        stream.Write(Encoding.ASCII.GetBytes(header));
        var buffer = new byte[8 * 1024 * 1024];
        var random = new Random(1234);
        for (long written = 0; written < dataSize; written += buffer.Length)
        {
            random.NextBytes(buffer);
            stream.Write(buffer, 0, (int)Math.Min(buffer.Length, dataSize - written));
        }
        stream.Flush(flushToDisk: true);
    }

    /// <summary>Drops the file's clean pages from the page cache so the next read comes from disk (Linux only).</summary>
    private static bool EvictFromPageCache(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        const int PosixFadvDontNeed = 4;
        return PosixFadvise((int)handle.DangerousGetHandle(), 0, 0, PosixFadvDontNeed) == 0;
    }

    [DllImport("libc", EntryPoint = "posix_fadvise", SetLastError = false)]
    private static extern int PosixFadvise(int fd, long offset, long length, int advice);
}
