namespace SharpDiffusion.Engine.Diagnostics;

/// <summary>The CPU instruction-set flags that matter for libtorch's CPU kernels, read from /proc/cpuinfo (Linux).</summary>
public sealed record BenchCpuFeatures(IReadOnlyList<string> Flags)
{
    private static readonly string[] Interesting = { "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16" };

    /// <summary>bf16 matrix products are only fast with native bf16 dot products (AVX512-BF16 or AMX).</summary>
    public bool HasFastBf16 => Flags.Contains("avx512_bf16") || Flags.Contains("amx_bf16");

    public static BenchCpuFeatures Read(string cpuinfoPath = "/proc/cpuinfo")
    {
        if (!File.Exists(cpuinfoPath)) return new BenchCpuFeatures(Array.Empty<string>());
        return Parse(File.ReadLines(cpuinfoPath));
    }

    /// <summary>The interesting flags of the first "flags" line.</summary>
    public static BenchCpuFeatures Parse(IEnumerable<string> cpuinfoLines)
    {
        foreach (var line in cpuinfoLines)
        {
            int colon = line.IndexOf(':');
            if (colon < 0 || line[..colon].Trim() != "flags") continue;
            var present = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
            return new BenchCpuFeatures(Interesting.Where(present.Contains).ToArray());
        }
        return new BenchCpuFeatures(Array.Empty<string>());
    }
}
