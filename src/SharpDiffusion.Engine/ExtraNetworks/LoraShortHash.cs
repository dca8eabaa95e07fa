using SharpDiffusion.Hashing;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// A1111's LoRA hash as written to <c>Lora hashes:</c>: <see cref="FileHasher.NetworkHash"/> (computed and cached by
/// the one hashing service) and its first 12 hex digits.
/// </summary>
public static class LoraShortHash
{
    public const int Length = 12;

    /// <returns>The full hash (lower-case hex), or null when the file cannot be read.</returns>
    public static string? Compute(string path, IReadOnlyDictionary<string, string>? metadata) => FileHasher.Shared.NetworkHash(path, metadata);

    public static string? Short(string? hash) => hash == null ? null : hash[..Math.Min(Length, hash.Length)];
}
