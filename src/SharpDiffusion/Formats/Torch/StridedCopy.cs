namespace SharpDiffusion.Formats.Torch;

/// <summary>Materialises a strided view (element strides, any rank, stride 0 allowed) as a row-major array.</summary>
internal static unsafe class StridedCopy
{
    /// <param name="source">Address of the view's element 0.</param>
    public static void Copy(byte* source, long[] shape, long[] strides, int elementSize, Span<byte> destination)
    {
        int rank = shape.Length;
        if (rank == 0)
        {
            new ReadOnlySpan<byte>(source, elementSize).CopyTo(destination);
            return;
        }
        long inner = shape[rank - 1];
        long innerStride = strides[rank - 1];
        long outerCount = 1;
        for (int d = 0; d < rank - 1; d++) outerCount *= shape[d];
        var index = new long[rank];
        int written = 0;
        fixed (byte* destBase = destination)
        {
            for (long o = 0; o < outerCount; o++)
            {
                long elementOffset = 0;
                for (int d = 0; d < rank - 1; d++) elementOffset += index[d] * strides[d];
                byte* row = source + elementOffset * elementSize;
                if (innerStride == 1)
                {
                    int bytes = checked((int)(inner * elementSize));
                    Buffer.MemoryCopy(row, destBase + written, destination.Length - written, bytes);
                    written += bytes;
                }
                else
                {
                    for (long i = 0; i < inner; i++)
                    {
                        Buffer.MemoryCopy(row + i * innerStride * elementSize, destBase + written, destination.Length - written, elementSize);
                        written += elementSize;
                    }
                }
                for (int d = rank - 2; d >= 0; d--)
                {
                    if (++index[d] < shape[d]) break;
                    index[d] = 0;
                }
            }
        }
    }
}
