using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Loading;

/// <summary>libtorch's allocator is asked for transparent huge pages before it allocates anything.</summary>
public class TransparentHugePagesTests
{
    [Fact]
    public void TheNativeEnvironmentAsksLibtorchForHugePages()
    {
        // A value set before the process started wins; otherwise the engine's initializer set "1".
        var before = Environment.GetEnvironmentVariable(TransparentHugePages.VariableName);
        Assert.Equal(before ?? "1", TransparentHugePages.NativeValue());
    }

    [Fact]
    public void LargeTensorsAreBackedByHugePagesWhereTheKernelAllowsThem()
    {
        var mode = File.Exists(ThpSetting) ? File.ReadAllText(ThpSetting) : "";
        if (!mode.Contains("[madvise]") && !mode.Contains("[always]")) return; // THP off in this kernel: nothing to check
        if (Environment.GetEnvironmentVariable(TransparentHugePages.VariableName) is "0") return; // the user turned it off
        long before = AnonHugePagesKb();
        using var big = empty(64L << 20, ScalarType.Byte);
        big.fill_(1);
        long after = AnonHugePagesKb();
        Assert.True(after - before >= 2048, $"AnonHugePages grew by {after - before} kB for a 64 MB tensor");
    }

    private const string ThpSetting = "/sys/kernel/mm/transparent_hugepage/enabled";

    private static long AnonHugePagesKb()
    {
        var line = File.ReadLines("/proc/self/smaps_rollup").First(l => l.StartsWith("AnonHugePages:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
