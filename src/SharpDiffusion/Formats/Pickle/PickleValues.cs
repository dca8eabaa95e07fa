using System.Numerics;

namespace SharpDiffusion.Formats.Pickle;

/// <summary>
/// How Python values appear after unpickling: None = null, bool, long (BigInteger beyond 64 bits), double,
/// string, byte[] (bytes/bytearray), <see cref="PickleTuple"/>, <c>List&lt;object?&gt;</c>, <see cref="PickleDict"/>,
/// <see cref="PickleSet"/>, <see cref="PickleGlobal"/>, <see cref="PickleObject"/>, <see cref="PickledTensor"/>,
/// <see cref="PickledStorage"/>, <see cref="NumpyArray"/>.
/// </summary>
public static class PickleValues
{
    /// <summary>The Python type name of a value, for error messages.</summary>
    public static string TypeName(object? value) => value switch
    {
        null => "None",
        bool => "bool",
        long or BigInteger => "int",
        double => "float",
        string => "str",
        byte[] => "bytes",
        PickleTuple => "tuple",
        List<object?> => "list",
        PickleDict => "dict",
        PickleSet => "set",
        PickleGlobal g => "global " + g.FullName,
        PickleObject o => o.Type.FullName + " object",
        PickledTensor => "tensor",
        PickledStorage => "storage",
        NumpyArray => "numpy.ndarray",
        _ => value.GetType().Name,
    };
}
