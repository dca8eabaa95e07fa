namespace SharpDiffusion.Formats.Gguf;

/// <summary>
/// Storage layout of a ggml type: elements per block and bytes per block (ggml's blck_size / type_size).
/// A row of <c>n</c> elements takes <c>n / BlockSize * TypeSize</c> bytes; <c>n</c> must be a multiple of BlockSize.
/// </summary>
public readonly record struct GgmlTypeTraits(GgmlType Type, int BlockSize, int TypeSize, TensorDType DType)
{
    private const int QK_K = 256;

    /// <summary>ggml's name for the type ("Q4_K", "F16", ...).</summary>
    public string Name => Type.ToString();

    public bool IsQuantized => DType == TensorDType.Quantized;

    private static readonly Dictionary<GgmlType, GgmlTypeTraits> Table = new GgmlTypeTraits[]
    {
        new(GgmlType.F32, 1, 4, TensorDType.F32),
        new(GgmlType.F16, 1, 2, TensorDType.F16),
        new(GgmlType.BF16, 1, 2, TensorDType.BF16),
        new(GgmlType.F64, 1, 8, TensorDType.F64),
        new(GgmlType.I8, 1, 1, TensorDType.I8),
        new(GgmlType.I16, 1, 2, TensorDType.I16),
        new(GgmlType.I32, 1, 4, TensorDType.I32),
        new(GgmlType.I64, 1, 8, TensorDType.I64),
        // Block sizes follow the block_* structs of ggml-common.h (fp16 scales are 2 bytes).
        Quant(GgmlType.Q4_0, 32, 2 + 16),
        Quant(GgmlType.Q4_1, 32, 2 + 2 + 16),
        Quant(GgmlType.Q5_0, 32, 2 + 4 + 16),
        Quant(GgmlType.Q5_1, 32, 2 + 2 + 4 + 16),
        Quant(GgmlType.Q8_0, 32, 2 + 32),
        Quant(GgmlType.Q8_1, 32, 4 + 32),
        Quant(GgmlType.Q2_K, QK_K, QK_K / 16 + QK_K / 4 + 2 + 2),
        Quant(GgmlType.Q3_K, QK_K, QK_K / 8 + QK_K / 4 + 12 + 2),
        Quant(GgmlType.Q4_K, QK_K, 2 + 2 + 12 + QK_K / 2),
        Quant(GgmlType.Q5_K, QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2),
        Quant(GgmlType.Q6_K, QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2),
        Quant(GgmlType.Q8_K, QK_K, 4 + QK_K + QK_K / 16 * 2),
        Quant(GgmlType.IQ2_XXS, QK_K, 2 + QK_K / 4),
        Quant(GgmlType.IQ2_XS, QK_K, 2 + QK_K / 4 + QK_K / 32),
        Quant(GgmlType.IQ3_XXS, QK_K, 2 + QK_K / 4 + QK_K / 8),
        Quant(GgmlType.IQ1_S, QK_K, 2 + QK_K / 8 + QK_K / 16),
        Quant(GgmlType.IQ4_NL, 32, 2 + 16),
        Quant(GgmlType.IQ3_S, QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4),
        Quant(GgmlType.IQ2_S, QK_K, 2 + QK_K / 4 + QK_K / 16),
        Quant(GgmlType.IQ4_XS, QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),
        Quant(GgmlType.IQ1_M, QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
        Quant(GgmlType.TQ1_0, QK_K, 2 + 4 * 13),
        Quant(GgmlType.TQ2_0, QK_K, 2 + 64),
        Quant(GgmlType.MXFP4, 32, 1 + 16),
        Quant(GgmlType.NVFP4, 64, 4 + 32),
        Quant(GgmlType.Q1_0, 128, 2 + 16),
    }.ToDictionary(t => t.Type);

    /// <summary>Types that once existed and were removed from ggml (kept to give a precise error).</summary>
    private static readonly Dictionary<uint, string> RemovedTypes = new()
    {
        [4] = "Q4_2", [5] = "Q4_3",
        [31] = "Q4_0_4_4", [32] = "Q4_0_4_8", [33] = "Q4_0_8_8",
        [36] = "IQ4_NL_4_4", [37] = "IQ4_NL_4_8", [38] = "IQ4_NL_8_8",
    };

    public static IReadOnlyCollection<GgmlTypeTraits> All => Table.Values;

    public static bool TryGet(uint type, out GgmlTypeTraits traits) => Table.TryGetValue((GgmlType)type, out traits);

    public static GgmlTypeTraits Get(GgmlType type) =>
        Table.TryGetValue(type, out var t) ? t : throw new ArgumentOutOfRangeException(nameof(type), type, "not a ggml type");

    /// <summary>Why a type number is not readable: removed from ggml, or never defined.</summary>
    public static string DescribeUnknown(uint type) => RemovedTypes.TryGetValue(type, out var name)
        ? $"ggml type {type} ({name}) was removed from ggml and is not supported"
        : $"unknown ggml type {type}";

    /// <summary>Bytes of one row of <paramref name="innermost"/> elements; -1 when the row does not fill whole blocks.</summary>
    public long RowBytes(long innermost) => innermost % BlockSize != 0 ? -1 : innermost / BlockSize * TypeSize;

    private static GgmlTypeTraits Quant(GgmlType type, int blockSize, int typeSize) => new(type, blockSize, typeSize, TensorDType.Quantized);
}
