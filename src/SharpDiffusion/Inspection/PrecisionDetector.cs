using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>
/// Storage precision by bytes of float weights. Small tensors (norm scales, biases, DDPM schedule buffers) are
/// left out because exports keep them in fp32 even when the weights are fp16. A quantized file reports its
/// dominant quantization type.
/// </summary>
internal static class PrecisionDetector
{
    /// <summary>Tensors with fewer elements than this are buffers/norms, not weights.</summary>
    private const long SmallTensor = 4096;

    /// <summary>One type must hold this share of the weight bytes, or the file is "mixed".</summary>
    private const double DominantShare = 0.95;

    public static string? Detect(IReadOnlyList<TensorInfo> tensors)
    {
        var quantized = new Dictionary<string, long>(StringComparer.Ordinal);
        var floatBytes = new Dictionary<string, long>(StringComparer.Ordinal);
        var smallFloatBytes = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            if (t.DType == TensorDType.Quantized)
            {
                var name = t.TypeName ?? "quantized";
                quantized[name] = quantized.GetValueOrDefault(name) + t.ElementCount;
                continue;
            }
            if (!t.DType.IsFloatingPoint()) continue;
            var target = t.ElementCount >= SmallTensor ? floatBytes : smallFloatBytes;
            var key = Name(t.DType);
            target[key] = target.GetValueOrDefault(key) + t.ByteLength;
        }

        if (quantized.Count > 0) return quantized.MaxBy(kv => kv.Value).Key.ToUpperInvariant();
        var weights = floatBytes.Count > 0 ? floatBytes : smallFloatBytes;
        if (weights.Count == 0) return null;
        long total = weights.Values.Sum();
        var top = weights.MaxBy(kv => kv.Value);
        return top.Value >= DominantShare * total ? top.Key : "mixed";
    }

    private static string Name(TensorDType dtype) => dtype switch
    {
        TensorDType.F64 => "fp64",
        TensorDType.F32 => "fp32",
        TensorDType.F16 => "fp16",
        TensorDType.BF16 => "bf16",
        _ => "fp8",
    };
}
