using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.LoraTools;

/// <summary>The storage precision of a written LoRA: fp32 (kohya's default), fp16 or bf16. Computation is always float32.</summary>
public static class LoraPrecision
{
    public static readonly IReadOnlyList<string> Names = ["fp32", "fp16", "bf16"];

    /// <summary>The dtype for a precision name (also accepts kohya's "float"); false for anything else.</summary>
    public static bool TryParse(string? name, out TensorDType dtype)
    {
        switch (name?.ToLowerInvariant())
        {
            case "fp32" or "float" or "float32":
                dtype = TensorDType.F32;
                return true;
            case "fp16" or "float16" or "half":
                dtype = TensorDType.F16;
                return true;
            case "bf16" or "bfloat16":
                dtype = TensorDType.BF16;
                return true;
            default:
                dtype = TensorDType.F32;
                return false;
        }
    }
}
