namespace SharpDiffusion.Formats.Torch;

/// <summary>Element types of torch storage classes as persistent ids name them.</summary>
internal static class TorchStorageTypes
{
    public static bool TryGetDType(string storageType, out TensorDType dtype)
    {
        dtype = storageType switch
        {
            "FloatStorage" => TensorDType.F32,
            "HalfStorage" => TensorDType.F16,
            "BFloat16Storage" => TensorDType.BF16,
            "DoubleStorage" => TensorDType.F64,
            "LongStorage" => TensorDType.I64,
            "IntStorage" => TensorDType.I32,
            "ShortStorage" => TensorDType.I16,
            "CharStorage" => TensorDType.I8,
            "ByteStorage" or "UntypedStorage" => TensorDType.U8,
            "BoolStorage" => TensorDType.Bool,
            _ => (TensorDType)(-1),
        };
        return (int)dtype >= 0;
    }

    /// <summary>Element types of torch dtypes by attribute name (torch.float8_e4m3fn ...), as _rebuild_tensor_v3 names them.</summary>
    public static bool TryGetTorchDType(string name, out TensorDType dtype)
    {
        dtype = name switch
        {
            "float32" or "float" => TensorDType.F32,
            "float16" or "half" => TensorDType.F16,
            "bfloat16" => TensorDType.BF16,
            "float64" or "double" => TensorDType.F64,
            "int64" or "long" => TensorDType.I64,
            "int32" or "int" => TensorDType.I32,
            "int16" or "short" => TensorDType.I16,
            "int8" => TensorDType.I8,
            "uint8" => TensorDType.U8,
            "bool" => TensorDType.Bool,
            "float8_e4m3fn" => TensorDType.F8_E4M3,
            "float8_e5m2" => TensorDType.F8_E5M2,
            _ => (TensorDType)(-1),
        };
        return (int)dtype >= 0;
    }
}
