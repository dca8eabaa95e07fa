using SharpDiffusion.Hashing;

namespace SharpDiffusion.Tests.Hashing;

/// <summary>
/// Points SHARPDIFFUSION_CACHE_DIR at <paramref name="directory"/> until disposed, then restores the previous value.
/// The variable is process-wide: use it only in tests of <see cref="CacheDirCollection"/>.
/// </summary>
internal sealed class HashCacheDirOverride : IDisposable
{
    private readonly string? _previous = Environment.GetEnvironmentVariable(HashCache.CacheDirVariable);

    public HashCacheDirOverride(string directory) => Environment.SetEnvironmentVariable(HashCache.CacheDirVariable, directory);

    public void Dispose() => Environment.SetEnvironmentVariable(HashCache.CacheDirVariable, _previous);
}
