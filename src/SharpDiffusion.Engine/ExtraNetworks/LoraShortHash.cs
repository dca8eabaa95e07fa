using System.Buffers.Binary;
using System.Security.Cryptography;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// A1111's LoRA hash (<c>network.NetworkOnDisk</c>): the file's <c>sshs_model_hash</c> metadata when present, else for
/// .safetensors the "addnet" hash (SHA-256 of the bytes after the header), else the SHA-256 of the whole file; the
/// short hash written to <c>Lora hashes:</c> is its first 12 hex digits.
/// </summary>
public static class LoraShortHash
{
    public const int Length = 12;

    /// <returns>The full hash (lower-case hex), or null when the file cannot be read.</returns>
    public static string? Compute(string path, IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata != null && metadata.TryGetValue("sshs_model_hash", out var stored) && stored.Length > 0) return stored;
        if (!File.Exists(path)) return null;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            {
                Span<byte> header = stackalloc byte[8];
                stream.ReadExactly(header);
                long offset = 8 + (long)BinaryPrimitives.ReadUInt64LittleEndian(header);
                if (offset > stream.Length) throw new InvalidModelFileException(path, "the safetensors header is longer than the file");
                stream.Seek(offset, SeekOrigin.Begin);
            }
            return Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static string? Short(string? hash) => hash == null ? null : hash[..Math.Min(Length, hash.Length)];
}
