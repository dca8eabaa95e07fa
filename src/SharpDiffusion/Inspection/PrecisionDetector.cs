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
        // Indexed by TensorDType: one pass, no per-tensor hashing.
        int types = Enum.GetValues<TensorDType>().Length;
        var weightBytes = new long[types];
        var smallBytes = new long[types];
        Dictionary<string, long>? quantized = null;
        foreach (var t in tensors)
        {
            if (t.DType == TensorDType.Quantized)
            {
                quantized ??= new Dictionary<string, long>(StringComparer.Ordinal);
                var name = t.TypeName ?? "quantized";
                quantized[name] = quantized.GetValueOrDefault(name) + t.ElementCount;
            }
            else if (t.DType.IsFloatingPoint())
            {
                (t.ElementCount >= SmallTensor ? weightBytes : smallBytes)[(int)t.DType] += t.ByteLength;
            }
        }
        if (quantized != null) return quantized.MaxBy(kv => kv.Value).Key.ToUpperInvariant();

        var byName = new Dictionary<string, long>(StringComparer.Ordinal);
        var source = weightBytes.Any(b => b > 0) ? weightBytes : smallBytes;
        for (int i = 0; i < types; i++)
        {
            if (source[i] > 0) byName[Name((TensorDType)i)] = byName.GetValueOrDefault(Name((TensorDType)i)) + source[i];
        }
        if (byName.Count == 0) return null;
        long total = byName.Values.Sum();
        var top = byName.MaxBy(kv => kv.Value);
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
