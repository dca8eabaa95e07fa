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
}
