using System.Runtime.InteropServices;

namespace SharpDiffusion.Engine;

/// <summary>
/// Turns off libtorch's NNPACK convolution path, which on CPUs it does not support only prints "Could not
/// initialize NNPACK! Reason: Unsupported hardware." for every convolution (the native kernels run either way).
/// TorchSharp has no switch for it, so this calls <c>at::globalContext().setUserEnabledNNPACK(false)</c> — what
/// PyTorch's <c>torch.backends.nnpack.set_flags(False)</c> does — through its exported C++ symbols; where they are
/// missing (another libtorch build) nothing changes.
/// </summary>
public static partial class NnpackSwitch
{
    private const string LibTorchCpu = "libtorch_cpu";

    /// <returns>Whether NNPACK is now off.</returns>
    public static bool Disable()
    {
        try
        {
            // libtorch is loaded by TorchSharp's first call; make sure that has happened.
            _ = TorchSharp.torch.get_num_threads();
            SetUserEnabledNnpack(GlobalContext(), false);
            return !UserEnabledNnpack(GlobalContext());
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport(LibTorchCpu, EntryPoint = "_ZN2at13globalContextEv")]
    private static partial IntPtr GlobalContext();

    [LibraryImport(LibTorchCpu, EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    private static partial void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [LibraryImport(LibTorchCpu, EntryPoint = "_ZNK2at7Context17userEnabledNNPACKEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool UserEnabledNnpack(IntPtr context);
}
