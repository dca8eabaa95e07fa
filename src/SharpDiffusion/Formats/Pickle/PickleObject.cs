namespace SharpDiffusion.Formats.Pickle;

/// <summary>
/// An instance of an allow-listed class kept as plain data (e.g. a Lightning <c>ModelCheckpoint</c> or a numpy
/// dtype): its class, constructor arguments and the state BUILD gave it. No Python code is involved.
/// </summary>
public sealed class PickleObject
{
    public PickleObject(PickleGlobal type, PickleTuple arguments)
    {
        Type = type;
        Arguments = arguments;
    }

    public PickleGlobal Type { get; }
    public PickleTuple Arguments { get; }

    /// <summary>What BUILD set (usually the instance's <c>__dict__</c>), or null.</summary>
    public object? State { get; internal set; }
}
