using SharpDiffusion.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Weights;

/// <summary>Turns tensor records of a model file into torch tensors (one copy: file map to tensor storage).</summary>
public static class TensorReading
{
    public static ScalarType ToScalarType(this TensorDType dtype) => dtype switch
    {
        TensorDType.F64 => ScalarType.Float64,
        TensorDType.F32 => ScalarType.Float32,
        TensorDType.F16 => ScalarType.Float16,
        TensorDType.BF16 => ScalarType.BFloat16,
        TensorDType.I64 => ScalarType.Int64,
        TensorDType.I32 => ScalarType.Int32,
        TensorDType.I16 => ScalarType.Int16,
        TensorDType.I8 => ScalarType.Int8,
        TensorDType.U8 => ScalarType.Byte,
        TensorDType.Bool => ScalarType.Bool,
        _ => throw new NotSupportedException($"tensor type {dtype} cannot be loaded as a torch tensor"),
    };

    /// <summary>Reads one tensor on the CPU in its stored dtype, then converts to <paramref name="dtype"/>/<paramref name="device"/> if given.</summary>
    public static Tensor Read(IModelFile file, TensorInfo info, ScalarType? dtype = null, Device? device = null)
    {
        if (info.DType is TensorDType.F8_E4M3 or TensorDType.F8_E5M2) return ReadFloat8(file, info, dtype, device);
        var raw = empty(info.Shape, info.DType.ToScalarType());
        if (info.ByteLength > 0) file.ReadTensorData(info, raw.bytes);
        if ((dtype == null || dtype == raw.dtype) && (device == null || device.type == DeviceType.CPU)) return raw;
        using (raw)
        {
            return raw.to(dtype ?? raw.dtype, device ?? CPU);
        }
    }

    /// <summary>TorchSharp has no fp8 types: decode fp8 bytes to float32 in managed code.</summary>
    private static Tensor ReadFloat8(IModelFile file, TensorInfo info, ScalarType? dtype, Device? device)
    {
        var bytes = new byte[info.ByteLength];
        file.ReadTensorData(info, bytes);
        var values = new float[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
            values[i] = info.DType == TensorDType.F8_E5M2 ? Float8.E5M2ToSingle(bytes[i]) : Float8.E4M3FnToSingle(bytes[i]);
        var t = tensor(values).reshape(info.Shape);
        if ((dtype == null || dtype == ScalarType.Float32) && (device == null || device.type == DeviceType.CPU)) return t;
        using (t) return t.to(dtype ?? ScalarType.Float32, device ?? CPU);
    }
}
