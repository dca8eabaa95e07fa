using System.Diagnostics;
using System.Globalization;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Bench;

/// <summary>
/// How fast a folder of full-size checkpoints is scanned: writes sparse safetensors files with SD1.5-sized headers
/// (the 1,143-tensor layout from tests/data/reference when present, else a synthetic 1,100-tensor one), then
/// times <see cref="SafetensorsFile.Open"/> on all of them. Sparse files keep the 2 GB models off the disk.
/// Arguments: [file count, default 100] [runs, default 5].
/// </summary>
public static class SafetensorsHeaderBenchmark
{
    public static void HeaderBenchmark(string[] args)
    {
        int fileCount = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100;
        int runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 5;
        var (tensors, source) = LoadInventory();
        string dir = Path.Combine(Path.GetTempPath(), "sd-header-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            var create = Stopwatch.StartNew();
            var paths = new List<string>();
            for (int i = 0; i < fileCount; i++)
            {
                string path = Path.Combine(dir, $"model{i:D3}.safetensors");
                SafetensorsWriter.WriteSparse(path, tensors, new Dictionary<string, string> { ["format"] = "pt", ["index"] = i.ToString(CultureInfo.InvariantCulture) });
                paths.Add(path);
            }
            create.Stop();

            long headerBytes, modelBytes;
            using (var first = SafetensorsFile.Open(paths[0]))
            {
                headerBytes = first.DataStart - 8;
                modelBytes = first.SizeBytes;
            }
            Console.WriteLine($"safetensors header benchmark: {fileCount} files x {tensors.Count} tensors ({source}), " +
                              $"header {headerBytes / 1024.0:F1} KiB, model {modelBytes / 1e9:F2} GB (sparse); created in {create.ElapsedMilliseconds} ms");

            var times = new List<double>();
            for (int run = 0; run < runs; run++)
            {
                var clock = Stopwatch.StartNew();
                int opened = 0;
                foreach (var path in paths)
                {
                    using var file = SafetensorsFile.Open(path);
                    opened += file.Tensors.Count;
                }
                clock.Stop();
                if (opened != fileCount * tensors.Count) throw new InvalidOperationException($"read {opened} tensors, expected {fileCount * tensors.Count}");
                times.Add(clock.Elapsed.TotalMilliseconds);
                Console.WriteLine($"  run {run + 1}: {clock.Elapsed.TotalMilliseconds:F1} ms ({clock.Elapsed.TotalMilliseconds / fileCount:F2} ms per file)");
            }
            times.Sort();
            double median = times[times.Count / 2];
            Console.WriteLine($"  open all {fileCount}: best {times[0]:F1} ms, median {median:F1} ms ({median / fileCount:F2} ms per file; first run includes JIT)");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The SD1.5 single-file inventory (name, dtype, shape per line) if the repository's reference data is found.</summary>
    private static (List<TensorInfo> Tensors, string Source) LoadInventory()
    {
        var starts = new[] { Environment.CurrentDirectory, AppContext.BaseDirectory };
        foreach (var d in starts.SelectMany(s => Ancestors(new DirectoryInfo(s))))
        {
            string tsv = Path.Combine(d.FullName, "tests", "data", "reference", "sd15_single_file.tsv");
            if (!File.Exists(tsv)) continue;
            var list = new List<TensorInfo>();
            foreach (var line in File.ReadLines(tsv))
            {
                var parts = line.Split('\t');
                if (parts.Length != 3 || !TensorDTypeExtensions.TryParseSafetensorsName(parts[1], out var dtype)) continue;
                var shape = parts[2].Trim('[', ']').Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
                list.Add(new TensorInfo(parts[0], dtype, shape));
            }
            return (list, "sd15_single_file.tsv");
        }
        return (Synthetic(1100), "synthetic");
    }

    private static IEnumerable<DirectoryInfo> Ancestors(DirectoryInfo? d)
    {
        for (; d != null; d = d.Parent) yield return d;
    }

    private static List<TensorInfo> Synthetic(int count)
    {
        var list = new List<TensorInfo>(count);
        string[] suffixes = ["attn1.to_q.weight", "attn1.to_k.weight", "attn1.to_v.weight", "attn1.to_out.0.weight", "attn1.to_out.0.bias", "norm1.weight", "norm1.bias", "ff.net.0.proj.weight", "ff.net.2.weight", "ff.net.2.bias"];
        for (int i = 0; i < count; i++)
        {
            string suffix = suffixes[i % suffixes.Length];
            long[] shape = suffix.EndsWith("bias") || suffix.StartsWith("norm") ? [1280] : [1280, 1280];
            list.Add(new TensorInfo($"model.diffusion_model.input_blocks.{i / 40}.1.transformer_blocks.{i % 40 / 10}.{suffix}", TensorDType.F16, shape));
        }
        return list;
    }
}
