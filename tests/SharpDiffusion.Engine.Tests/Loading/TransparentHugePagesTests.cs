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
        using var big = empty(64L << 20, ScalarType.Byte);
        big.fill_(1);
        // The tensor's own mapping, not the process total: other tests running in parallel allocate and free too.
        long hugeKb = AnonHugePagesKbAt((ulong)big.storage<byte>().data_ptr());
        Assert.True(hugeKb >= 2048, $"the 64 MB tensor's mapping has {hugeKb} kB of AnonHugePages");
    }

    private const string ThpSetting = "/sys/kernel/mm/transparent_hugepage/enabled";

    /// <summary>AnonHugePages of the /proc/self/smaps entry whose address range holds <paramref name="address"/>.</summary>
    private static long AnonHugePagesKbAt(ulong address)
    {
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && ulong.TryParse(line[..dash], System.Globalization.NumberStyles.HexNumber, null, out ulong start)
                && ulong.TryParse(line[(dash + 1)..space], System.Globalization.NumberStyles.HexNumber, null, out ulong end))
            {
                inside = start <= address && address < end;
                continue;
            }
            if (inside && line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        throw new InvalidOperationException($"no mapping in /proc/self/smaps holds 0x{address:x}");
    }
}
