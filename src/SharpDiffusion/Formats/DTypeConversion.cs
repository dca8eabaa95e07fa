using System.Buffers.Binary;

namespace SharpDiffusion.Formats;

/// <summary>
/// Converts raw little-endian tensor bytes to float32 and back, element by element. Narrowing to F16/BF16 rounds
/// to nearest, ties to even, as torch's <c>.to(dtype)</c> does; NaN stays NaN.
/// </summary>
public static class DTypeConversion
{
    /// <summary>
    /// Decodes <paramref name="source"/> (elements of <paramref name="dtype"/>) into <paramref name="destination"/>,
    /// which must hold exactly one float per element. Integers convert as (float)value; BOOL as 0 or 1.
    /// </summary>
    public static void ToSingle(ReadOnlySpan<byte> source, TensorDType dtype, Span<float> destination)
    {
        int size = dtype.ElementSize();
        if (size == 0) throw new ArgumentException($"{dtype} has no per-element encoding to convert", nameof(dtype));
        if (source.Length != (long)destination.Length * size)
            throw new ArgumentException(
                $"{source.Length} bytes of {dtype} are {source.Length / (double)size} elements, destination holds {destination.Length}");
        switch (dtype)
        {
            case TensorDType.F32:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadSingleLittleEndian(source[(i * 4)..]);
                break;
            case TensorDType.F64:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(source[(i * 8)..]);
                break;
            case TensorDType.F16:
                for (int i = 0; i < destination.Length; i++) destination[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(source[(i * 2)..]);
                break;
            case TensorDType.BF16:
                for (int i = 0; i < destination.Length; i++) destination[i] = BFloat16ToSingle(BinaryPrimitives.ReadUInt16LittleEndian(source[(i * 2)..]));
                break;
            case TensorDType.F8_E4M3:
                for (int i = 0; i < destination.Length; i++) destination[i] = Float8.E4M3FnToSingle(source[i]);
                break;
            case TensorDType.F8_E5M2:
                for (int i = 0; i < destination.Length; i++) destination[i] = Float8.E5M2ToSingle(source[i]);
                break;
            case TensorDType.I64:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt64LittleEndian(source[(i * 8)..]);
                break;
            case TensorDType.I32:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt32LittleEndian(source[(i * 4)..]);
                break;
            case TensorDType.I16:
                for (int i = 0; i < destination.Length; i++) destination[i] = BinaryPrimitives.ReadInt16LittleEndian(source[(i * 2)..]);
                break;
            case TensorDType.I8:
                for (int i = 0; i < destination.Length; i++) destination[i] = (sbyte)source[i];
                break;
            case TensorDType.U8:
                for (int i = 0; i < destination.Length; i++) destination[i] = source[i];
                break;
            case TensorDType.Bool:
                for (int i = 0; i < destination.Length; i++) destination[i] = source[i] != 0 ? 1f : 0f;
                break;
            default:
                throw new ArgumentException($"cannot convert {dtype} to float32", nameof(dtype));
        }
    }

    /// <summary>Decodes a whole tensor's bytes into a new float array.</summary>
    public static float[] ToSingle(ReadOnlySpan<byte> source, TensorDType dtype)
    {
        int size = dtype.ElementSize();
        if (size == 0) throw new ArgumentException($"{dtype} has no per-element encoding to convert", nameof(dtype));
        var result = new float[source.Length / size];
        ToSingle(source, dtype, result);
        return result;
    }

    /// <summary>
    /// Encodes <paramref name="source"/> as <paramref name="dtype"/> (F32, F16, BF16 or F64) little-endian bytes;
    /// <paramref name="destination"/> must hold exactly the encoded length.
    /// </summary>
    public static void FromSingle(ReadOnlySpan<float> source, TensorDType dtype, Span<byte> destination)
    {
        if (dtype is not (TensorDType.F32 or TensorDType.F16 or TensorDType.BF16 or TensorDType.F64))
            throw new ArgumentException($"float32 can be written as F32, F16, BF16 or F64, not {dtype}", nameof(dtype));
        int size = dtype.ElementSize();
        if (destination.Length != (long)source.Length * size)
            throw new ArgumentException($"{source.Length} elements of {dtype} need {(long)source.Length * size} bytes, destination holds {destination.Length}");
        switch (dtype)
        {
            case TensorDType.F32:
                for (int i = 0; i < source.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(destination[(i * 4)..], source[i]);
                break;
            case TensorDType.F64:
                for (int i = 0; i < source.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(destination[(i * 8)..], source[i]);
                break;
            case TensorDType.F16:
                // .NET's float -> Half conversion is IEEE round-to-nearest-even with overflow to infinity, like torch.
                for (int i = 0; i < source.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(destination[(i * 2)..], (Half)source[i]);
                break;
            case TensorDType.BF16:
                for (int i = 0; i < source.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(destination[(i * 2)..], SingleToBFloat16(source[i]));
                break;
        }
    }

    /// <summary>Encodes a float array as a new byte array of <paramref name="dtype"/>.</summary>
    public static byte[] FromSingle(ReadOnlySpan<float> source, TensorDType dtype)
    {
        var result = new byte[(long)source.Length * dtype.ElementSize()];
        FromSingle(source, dtype, result);
        return result;
    }

    /// <summary>bfloat16 is the upper half of a float32.</summary>
    public static float BFloat16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>
    /// float32 to bfloat16 bits, round to nearest even (c10::BFloat16's round_to_nearest_even): add 0x7FFF plus the
    /// lowest kept bit, then truncate. NaN maps to the canonical quiet NaN 0x7FC0.
    /// </summary>
    public static ushort SingleToBFloat16(float value)
    {
        if (float.IsNaN(value)) return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(value);
        uint roundingBias = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + roundingBias) >> 16);
    }
}
