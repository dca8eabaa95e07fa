using SharpDiffusion.Formats;
using SharpDiffusion.Hashing;

namespace SharpDiffusion.Inspection;

/// <summary>
/// What inspecting one model produced: where it is, its container format and size, the classification and,
/// when asked for, its hashes; or, when the file could not be read, the error (the scan goes on).
/// </summary>
public sealed class ModelReport
{
    public required string Path { get; init; }

    /// <summary>Null when the file could not be opened.</summary>
    public ModelFormat? Format { get; init; }

    public long SizeBytes { get; init; }

    public ModelClassification? Classification { get; init; }

    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>Null when not requested, for a diffusers folder (no single file to hash), or when hashing failed.</summary>
    public ModelHashes? Hashes { get; init; }

    /// <summary>Set when the model could not be read: a one-line reason naming the file.</summary>
    public string? Error { get; init; }

    public bool IsValid => Error == null;

    /// <summary>The file or folder name, for display.</summary>
    public string Name => System.IO.Path.GetFileName(Path.TrimEnd('/', '\\')) is { Length: > 0 } n ? n : Path;
}
