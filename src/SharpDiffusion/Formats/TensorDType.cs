namespace SharpDiffusion.Formats;

/// <summary>Element types a model file can hold. <see cref="Quantized"/> covers block-quantized GGUF types.</summary>
public enum TensorDType
{
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
    F8_E4M3,
    F8_E5M2,
    /// <summary>A block-quantized type (GGUF Q4_0, Q8_0, ...); <see cref="TensorInfo.TypeName"/> names it.</summary>
    Quantized,
}

public static class TensorDTypeExtensions
{
    /// <summary>Bytes per element; 0 for quantized types, whose size depends on the block layout.</summary>
    public static int ElementSize(this TensorDType dtype) => dtype switch
    {
        TensorDType.F64 or TensorDType.I64 => 8,
        TensorDType.F32 or TensorDType.I32 => 4,
        TensorDType.F16 or TensorDType.BF16 or TensorDType.I16 => 2,
        TensorDType.I8 or TensorDType.U8 or TensorDType.Bool or TensorDType.F8_E4M3 or TensorDType.F8_E5M2 => 1,
        _ => 0,
    };

    public static bool IsFloatingPoint(this TensorDType dtype) => dtype is TensorDType.F64 or TensorDType.F32
        or TensorDType.F16 or TensorDType.BF16 or TensorDType.F8_E4M3 or TensorDType.F8_E5M2;

    /// <summary>The safetensors spelling of the type ("F32", "BOOL", "F8_E4M3", ...).</summary>
    public static string SafetensorsName(this TensorDType dtype) => dtype switch
    {
        TensorDType.Bool => "BOOL",
        _ => dtype.ToString(),
    };

    public static bool TryParseSafetensorsName(string name, out TensorDType dtype)
    {
        switch (name)
        {
            case "F64": dtype = TensorDType.F64; return true;
            case "F32": dtype = TensorDType.F32; return true;
            case "F16": dtype = TensorDType.F16; return true;
            case "BF16": dtype = TensorDType.BF16; return true;
            case "I64": dtype = TensorDType.I64; return true;
            case "I32": dtype = TensorDType.I32; return true;
            case "I16": dtype = TensorDType.I16; return true;
            case "I8": dtype = TensorDType.I8; return true;
            case "U8": dtype = TensorDType.U8; return true;
            case "BOOL": dtype = TensorDType.Bool; return true;
            case "F8_E4M3": dtype = TensorDType.F8_E4M3; return true;
            case "F8_E5M2": dtype = TensorDType.F8_E5M2; return true;
            default: dtype = default; return false;
        }
    }
}
