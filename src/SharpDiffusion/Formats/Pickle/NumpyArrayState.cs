namespace SharpDiffusion.Formats.Pickle;

/// <summary>Applies <c>ndarray.__setstate__</c>'s state (version, shape, dtype, fortran order, raw bytes) as data.</summary>
internal static class NumpyArrayState
{
    public static void Apply(NumpyArray array, object? state)
    {
        if (state is not PickleTuple { Count: 5 } t || t[1] is not PickleTuple shape
            || t[2] is not PickleObject { Type.Kind: SafeGlobalKind.NumpyDType } dtype)
            throw new PickleFormatException("numpy array state is not (version, shape, dtype, fortran, data)");
        if (t[4] is not byte[] data)
            throw new PickleFormatException("numpy object arrays are refused (only raw numeric data is allowed)");
        var dims = new long[shape.Count];
        long count = 1;
        for (int i = 0; i < dims.Length; i++)
        {
            if (shape[i] is not long d || d < 0) throw new PickleFormatException("numpy array shape is not a tuple of sizes");
            dims[i] = d;
            count = d == 0 ? 0 : count > long.MaxValue / d ? throw new PickleFormatException("numpy array shape overflows") : count * d;
        }
        string code = (string)dtype.Arguments[0]!;
        string order = dtype.State is PickleTuple ds && ds.Count > 1 && ds[1] is string o ? o : "|";
        if (!int.TryParse(code.AsSpan(1), out int size) || size <= 0 || count * size != data.Length)
            throw new PickleFormatException($"numpy array of dtype '{code}' and {count} elements has {data.Length} bytes");
        array.DTypeCode = (order == "=" ? "<" : order) + code;
        array.Shape = dims;
        array.FortranOrder = t[3] is true;
        array.Data = data;
    }
}
