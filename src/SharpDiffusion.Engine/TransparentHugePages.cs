using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpDiffusion.Engine;

/// <summary>
/// Asks libtorch's CPU allocator for transparent huge pages (<c>THP_MEM_ALLOC_ENABLE=1</c>: buffers of 2 MB and more
/// are madvised MADV_HUGEPAGE). Faulting in fresh memory one 4 KB page at a time dominated model loading here
/// (~5 s per GB on this VM) and slowed every large activation; with 2 MB pages a 200 MB buffer is touched ~4x faster.
/// libtorch reads the variable once, at its first allocation, from the native environment, so it is set natively
/// (.NET's Environment.SetEnvironmentVariable does not reach native getenv on Unix) when this assembly loads, before
/// any engine code can allocate a tensor. A value the user already set wins.
/// </summary>
public static partial class TransparentHugePages
{
    public const string VariableName = "THP_MEM_ALLOC_ENABLE";

#pragma warning disable CA2255 // a library initializer on purpose: it must run before libtorch's first allocation
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void EnableForTorch()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            SetEnv(VariableName, "1", overwrite: 0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc/musl: libtorch keeps its default 4 KB pages.
        }
    }

    /// <summary>The value libtorch will see (the native environment), or null.</summary>
    public static string? NativeValue()
    {
        if (!OperatingSystem.IsLinux()) return null;
        var pointer = GetEnv(VariableName);
        return pointer == IntPtr.Zero ? null : Marshal.PtrToStringUTF8(pointer);
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr GetEnv(string name);
}
