using System.Runtime.InteropServices;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Formats.Torch;

internal static class TorchTestHelpers
{
    public static float[] ReadFloats(IModelFile file, string name)
    {
        var info = file.Tensors.Single(t => t.Name == name);
        var bytes = new byte[info.ByteLength];
        file.ReadTensorData(info, bytes);
        return info.DType switch
        {
            TensorDType.F32 => MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
            TensorDType.F16 => MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => (float)h).ToArray(),
            TensorDType.BF16 => MemoryMarshal.Cast<byte, ushort>(bytes).ToArray().Select(u => BitConverter.UInt32BitsToSingle((uint)u << 16)).ToArray(),
            TensorDType.F64 => MemoryMarshal.Cast<byte, double>(bytes).ToArray().Select(d => (float)d).ToArray(),
            _ => throw new ArgumentException(info.DType.ToString()),
        };
    }

    public static long[] ReadLongs(IModelFile file, string name)
    {
        var info = file.Tensors.Single(t => t.Name == name);
        var bytes = new byte[info.ByteLength];
        file.ReadTensorData(info, bytes);
        return MemoryMarshal.Cast<byte, long>(bytes).ToArray();
    }
}
