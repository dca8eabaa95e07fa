using System.Text;

namespace SharpDiffusion.Formats.Pickle;

/// <summary>
/// The allow-list of Python globals a model pickle may name (after AUTOMATIC1111's modules/safe.py) and their
/// data-only interpretation. Any other global fails the read: nothing a file names is ever executed.
/// </summary>
internal static class SafeGlobals
{
    private static readonly string[] StorageTypes =
    [
        "FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage", "LongStorage", "IntStorage",
        "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage", "UntypedStorage",
    ];

    private static readonly string[] DTypes =
    [
        "float16", "float32", "float64", "bfloat16", "half", "float", "double", "int64", "int32", "int16",
        "int8", "uint8", "bool", "long", "int", "short", "float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64",
    ];

    private static readonly Dictionary<string, SafeGlobalKind> Allowed = Build();

    private static Dictionary<string, SafeGlobalKind> Build()
    {
        var d = new Dictionary<string, SafeGlobalKind>(StringComparer.Ordinal)
        {
            ["collections.OrderedDict"] = SafeGlobalKind.OrderedDict,
            ["typing.OrderedDict"] = SafeGlobalKind.OrderedDict,
            ["collections.defaultdict"] = SafeGlobalKind.DefaultDict,
            ["builtins.set"] = SafeGlobalKind.Set,
            ["__builtin__.set"] = SafeGlobalKind.Set,
            ["builtins.frozenset"] = SafeGlobalKind.FrozenSet,
            ["__builtin__.frozenset"] = SafeGlobalKind.FrozenSet,
            ["torch._utils._rebuild_tensor"] = SafeGlobalKind.RebuildTensor,
            ["torch._utils._rebuild_tensor_v2"] = SafeGlobalKind.RebuildTensor,
            ["torch._utils._rebuild_tensor_v3"] = SafeGlobalKind.RebuildTensor,
            ["torch._utils._rebuild_parameter"] = SafeGlobalKind.RebuildParameter,
            ["torch._utils._rebuild_parameter_with_state"] = SafeGlobalKind.RebuildParameter,
            ["torch._tensor._rebuild_from_type_v2"] = SafeGlobalKind.RebuildFromType,
            ["torch.Size"] = SafeGlobalKind.TorchSize,
            ["torch.Tensor"] = SafeGlobalKind.Constant,
            ["torch._tensor.Tensor"] = SafeGlobalKind.Constant,
            ["torch.nn.parameter.Parameter"] = SafeGlobalKind.Constant,
            ["torch.storage.UntypedStorage"] = SafeGlobalKind.Constant,
            ["torch.storage.TypedStorage"] = SafeGlobalKind.Constant,
            ["torch.storage._TypedStorage"] = SafeGlobalKind.Constant,
            ["torch.nn.modules.container.ParameterDict"] = SafeGlobalKind.InertClass,
            ["numpy.core.multiarray.scalar"] = SafeGlobalKind.NumpyScalar,
            ["numpy._core.multiarray.scalar"] = SafeGlobalKind.NumpyScalar,
            ["numpy.dtype"] = SafeGlobalKind.NumpyDType,
            ["numpy.core.multiarray._reconstruct"] = SafeGlobalKind.NumpyReconstruct,
            ["numpy._core.multiarray._reconstruct"] = SafeGlobalKind.NumpyReconstruct,
            ["numpy.ndarray"] = SafeGlobalKind.Constant,
            ["_codecs.encode"] = SafeGlobalKind.CodecsEncode,
            ["pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"] = SafeGlobalKind.InertClass,
        };
        foreach (var s in StorageTypes) d["torch." + s] = SafeGlobalKind.Constant;
        foreach (var t in DTypes) d["torch." + t] = SafeGlobalKind.Constant;
        return d;
    }

    /// <summary>The inert token for an allowed global, or null when the global is not allowed.</summary>
    public static PickleGlobal? Resolve(string module, string name) =>
        Allowed.TryGetValue(module + "." + name, out var kind) ? new PickleGlobal(module, name, kind) : null;

    /// <summary>Interprets <c>callable(*args)</c> (REDUCE, INST, OBJ) for an allowed global, as data.</summary>
    public static object? Call(PickleGlobal callable, PickleTuple args, int depth = 0)
    {
        switch (callable.Kind)
        {
            case SafeGlobalKind.OrderedDict:
            case SafeGlobalKind.DefaultDict:
                return NewDict(callable, args);
            case SafeGlobalKind.Set:
            case SafeGlobalKind.FrozenSet:
                return NewSet(callable, args);
            case SafeGlobalKind.RebuildTensor:
                return RebuildTensor(callable, args);
            case SafeGlobalKind.RebuildParameter:
                if (args.Count < 1 || args[0] is not PickledTensor t)
                    throw Bad($"{callable.FullName} expects a tensor as its first argument");
                return t;
            case SafeGlobalKind.RebuildFromType:
                // (func, new_type, args, state): only a tensor rebuilt by an allowed function, re-typed as a tensor type.
                if (depth > 0 || args.Count < 3 || args[0] is not PickleGlobal func || args[1] is not PickleGlobal type
                    || type.Kind != SafeGlobalKind.Constant || args[2] is not PickleTuple inner)
                    throw Bad($"{callable.FullName} arguments are not (function, tensor type, args, state)");
                var rebuilt = Call(func, inner, depth + 1);
                if (rebuilt is not PickledTensor) throw Bad($"{callable.FullName} did not rebuild a tensor");
                return rebuilt;
            case SafeGlobalKind.TorchSize:
                if (args.Count == 0) return PickleTuple.Empty;
                return args.Count == 1 && args[0] is PickleTuple size ? size : throw Bad("torch.Size expects one tuple");
            case SafeGlobalKind.NumpyScalar:
                return NumpyScalar(args);
            case SafeGlobalKind.NumpyDType:
                if (args.Count < 1 || args[0] is not string) throw Bad("numpy.dtype expects a type code");
                return new PickleObject(callable, args);
            case SafeGlobalKind.NumpyReconstruct:
                if (args.Count < 1 || args[0] is not PickleGlobal { FullName: "numpy.ndarray" })
                    throw Bad("numpy _reconstruct is only allowed for numpy.ndarray");
                return new NumpyArray();
            case SafeGlobalKind.CodecsEncode:
                return Encode(args);
            case SafeGlobalKind.InertClass:
                return new PickleObject(callable, args);
            default:
                throw Bad($"global '{callable.FullName}' cannot be called");
        }
    }

    /// <summary>Interprets <c>cls.__new__(cls, *args)</c> (NEWOBJ, NEWOBJ_EX): only classes kept as data.</summary>
    public static object? New(PickleGlobal cls, PickleTuple args) => cls.Kind switch
    {
        SafeGlobalKind.OrderedDict or SafeGlobalKind.DefaultDict => new PickleDict { TypeName = cls.FullName },
        SafeGlobalKind.Set => new PickleSet(),
        SafeGlobalKind.FrozenSet => NewSet(cls, args),
        SafeGlobalKind.InertClass => new PickleObject(cls, args),
        _ => throw Bad($"global '{cls.FullName}' cannot be instantiated"),
    };

    private static PickleDict NewDict(PickleGlobal type, PickleTuple args)
    {
        var dict = new PickleDict { TypeName = type.FullName };
        int first = 0;
        if (type.Kind == SafeGlobalKind.DefaultDict)
        {
            // defaultdict(default_factory[, items]): the factory is a reference only, it is never called.
            if (args.Count > 0 && args[0] is not (null or PickleGlobal))
                throw Bad("defaultdict factory must be None or an allowed global");
            first = 1;
        }
        if (args.Count > first + 1) throw Bad($"{type.FullName} takes at most one positional argument");
        if (args.Count == first + 1)
        {
            switch (args[first])
            {
                case PickleDict src:
                    foreach (var e in src.Entries) dict.Set(e.Key, e.Value);
                    break;
                case IReadOnlyList<object?> pairs:
                    foreach (var pair in pairs)
                    {
                        if (pair is not IReadOnlyList<object?> { Count: 2 } kv) throw Bad($"{type.FullName} items must be key/value pairs");
                        dict.Set(kv[0], kv[1]);
                    }
                    break;
                default:
                    throw Bad($"{type.FullName} cannot be built from {PickleValues.TypeName(args[first])}");
            }
        }
        return dict;
    }

    private static PickleSet NewSet(PickleGlobal type, PickleTuple args)
    {
        var set = new PickleSet { Frozen = type.Kind == SafeGlobalKind.FrozenSet };
        if (args.Count == 0) return set;
        if (args.Count != 1) throw Bad($"{type.FullName} takes at most one argument");
        IEnumerable<object?> items = args[0] switch
        {
            List<object?> l => l,
            PickleTuple t => t,
            PickleSet s => s.Items,
            _ => throw Bad($"{type.FullName} cannot be built from {PickleValues.TypeName(args[0])}"),
        };
        foreach (var item in items) set.Add(item);
        return set;
    }

    private static PickledTensor RebuildTensor(PickleGlobal callable, PickleTuple args)
    {
        // _rebuild_tensor(storage, offset, size, stride); _v2 adds requires_grad, backward_hooks[, metadata].
        if (args.Count < 4 || args[0] is not PickledStorage storage)
            throw Bad($"{callable.FullName} arguments are not (storage, offset, size, stride, ...)");
        long offset = ToLong(args[1], "storage offset");
        long[] size = ToDims(args[2], "size");
        long[] stride = ToDims(args[3], "stride");
        if (size.Length != stride.Length) throw Bad($"tensor size has {size.Length} dims but stride has {stride.Length}");
        bool requiresGrad = args.Count > 4 && args[4] is true;
        string? dtypeName = null;
        if (callable.Name == "_rebuild_tensor_v3")
        {
            // v3 adds the dtype (torch.float8_e4m3fn ...) after backward_hooks; offsets and strides count its elements.
            if (args.Count < 7 || args[6] is not PickleGlobal { Module: "torch", Kind: SafeGlobalKind.Constant } dtype)
                throw Bad("_rebuild_tensor_v3 arguments lack a torch dtype");
            dtypeName = dtype.Name;
        }
        return new PickledTensor(storage, offset, size, stride, requiresGrad) { DTypeName = dtypeName };
    }

    private static long[] ToDims(object? value, string what)
    {
        if (value is not PickleTuple t) throw Bad($"tensor {what} is {PickleValues.TypeName(value)}, not a tuple");
        if (t.Count > 64) throw Bad($"tensor {what} has {t.Count} dimensions");
        var dims = new long[t.Count];
        for (int i = 0; i < dims.Length; i++) dims[i] = ToLong(t[i], what);
        return dims;
    }

    private static long ToLong(object? value, string what) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw Bad($"tensor {what} is {PickleValues.TypeName(value)}, not an int"),
    };

    private static byte[] Encode(PickleTuple args)
    {
        // Protocol 2 pickles Python 3 bytes as _codecs.encode(text, 'latin1'): each char is one byte.
        if (args.Count < 1 || args[0] is not string text) throw Bad("_codecs.encode expects a str");
        string encoding = args.Count > 1 && args[1] is string e ? e.ToLowerInvariant().Replace('_', '-') : "utf-8";
        switch (encoding)
        {
            case "latin1" or "latin-1" or "iso-8859-1":
                var bytes = new byte[text.Length];
                for (int i = 0; i < text.Length; i++)
                {
                    if (text[i] > 0xFF) throw Bad("_codecs.encode: character outside latin-1");
                    bytes[i] = (byte)text[i];
                }
                return bytes;
            case "utf-8" or "utf8":
                return Encoding.UTF8.GetBytes(text);
            default:
                throw Bad($"_codecs.encode with encoding '{encoding}' is not supported");
        }
    }

    private static object NumpyScalar(PickleTuple args)
    {
        // scalar(dtype, raw bytes): decoded to the Python number it stands for.
        if (args.Count != 2 || args[0] is not PickleObject { Type.Kind: SafeGlobalKind.NumpyDType } dtype || args[1] is not byte[] raw)
            throw Bad("numpy scalar arguments are not (dtype, bytes)");
        string code = (string)dtype.Arguments[0]!;
        bool bigEndian = dtype.State is PickleTuple st && st.Count > 1 && st[1] is ">";
        return NumpyCodec.Decode(code, bigEndian, raw);
    }

    private static PickleFormatException Bad(string message) => new(message);
}
