using SharpDiffusion.Formats;

namespace SharpDiffusion.Workshop;

/// <summary>The output precisions the workshop writes: fp32, fp16, bf16 (float tensors only; integer tensors keep their type).</summary>
public static class Precision
{
    public static readonly IReadOnlyList<string> Names = ["fp32", "fp16", "bf16"];

    public static bool TryParse(string? text, out TensorDType dtype)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "fp32" or "f32" or "float32" or "float": dtype = TensorDType.F32; return true;
            case "fp16" or "f16" or "float16" or "half": dtype = TensorDType.F16; return true;
            case "bf16" or "bfloat16": dtype = TensorDType.BF16; return true;
            default: dtype = default; return false;
        }
    }

    public static string Name(TensorDType dtype) => dtype switch
    {
        TensorDType.F32 => "fp32",
        TensorDType.F16 => "fp16",
        TensorDType.BF16 => "bf16",
        TensorDType.F64 => "fp64",
        _ => dtype.SafetensorsName(),
    };

    /// <summary>float32 can be encoded back to these types (DTypeConversion.FromSingle).</summary>
    internal static bool CanEncode(TensorDType dtype) => dtype is TensorDType.F32 or TensorDType.F16 or TensorDType.BF16 or TensorDType.F64;

    /// <summary>The dtype a tensor is stored as: <paramref name="target"/> for float tensors when given, else unchanged.</summary>
    internal static TensorDType Apply(TensorDType source, TensorDType? target) =>
        target is { } t && source.IsFloatingPoint() ? t : source;
}
