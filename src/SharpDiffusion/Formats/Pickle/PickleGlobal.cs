namespace SharpDiffusion.Formats.Pickle;

/// <summary>
/// A reference to an allow-listed Python global (class, function or constant), as an inert token: the
/// machine interprets the few it knows (<see cref="SafeGlobals"/>); nothing named by a file is ever run.
/// </summary>
public sealed class PickleGlobal
{
    internal PickleGlobal(string module, string name, SafeGlobalKind kind)
    {
        Module = module;
        Name = name;
        Kind = kind;
    }

    public string Module { get; }
    public string Name { get; }
    public string FullName => Module + "." + Name;
    internal SafeGlobalKind Kind { get; }

    public override string ToString() => FullName;
}
