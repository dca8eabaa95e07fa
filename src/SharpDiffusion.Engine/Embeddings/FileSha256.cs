using SharpDiffusion.Hashing;

namespace SharpDiffusion.Engine.Embeddings;

/// <summary>
/// SHA-256 of a file's bytes as lower-case hex (A1111's <c>hashes.sha256</c>, from which its short hashes are cut),
/// through the one hashing service and its cache (<see cref="FileHasher"/>).
/// </summary>
public static class FileSha256
{
    /// <returns>The hex digest, or null when <paramref name="path"/> is not a readable file (e.g. a folder model).</returns>
    public static string? TryCompute(string path) => FileHasher.Shared.TryGet(path)?.Sha256;
}
