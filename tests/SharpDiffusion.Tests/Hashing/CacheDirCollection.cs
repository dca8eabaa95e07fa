namespace SharpDiffusion.Tests.Hashing;

/// <summary>Tests that set SHARPDIFFUSION_CACHE_DIR (process-wide) run one at a time.</summary>
[CollectionDefinition(Name)]
public sealed class CacheDirCollection
{
    public const string Name = "SHARPDIFFUSION_CACHE_DIR";
}
