using System.Security.Cryptography;

namespace SharpDiffusion.Engine.Embeddings;

/// <summary>SHA-256 of a file's bytes as lower-case hex (A1111's <c>hashes.sha256</c>, from which its short hashes are cut).</summary>
public static class FileSha256
{
    /// <returns>The hex digest, or null when <paramref name="path"/> is not a readable file (e.g. a folder model).</returns>
    public static string? TryCompute(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            return Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
