namespace SharpDiffusion.Formats.Pickle;

/// <summary>What an allow-listed global is for, which decides what the machine may do with it.</summary>
internal enum SafeGlobalKind
{
    OrderedDict,
    DefaultDict,
    Set,
    FrozenSet,
    RebuildTensor,
    RebuildParameter,
    RebuildFromType,
    TorchSize,
    NumpyScalar,
    NumpyDType,
    NumpyReconstruct,
    CodecsEncode,
    /// <summary>A class kept as an inert <see cref="PickleObject"/> (Lightning ModelCheckpoint, ParameterDict, numpy.ndarray).</summary>
    InertClass,
    /// <summary>A value that is only referenced, never called: storage types, dtypes, torch.Tensor.</summary>
    Constant,
}
