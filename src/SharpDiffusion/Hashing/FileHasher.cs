namespace SharpDiffusion.Hashing;

/// <summary>
/// The one way model files are hashed: <see cref="ModelHashes"/> (sha256, A1111 legacy and addnet hashes in one
/// streamed read) remembered in a <see cref="HashCache"/> by path, size and modification time. Checkpoints, VAEs,
/// LoRAs, embeddings and hypernetworks all go through it, so a file is read for hashing at most once per change.
/// A1111's rule for which hash names a LoRA (<see cref="NetworkHash"/>) lives here too. Thread-safe.
/// </summary>
public sealed class FileHasher
{
    /// <summary>
    /// Runs a hash computation for a file of the given size; a caller may wrap it (a progress bar). The signature is
    /// <see cref="Inspection.ModelInspector.HashRunner"/>'s.
    /// </summary>
    public delegate ModelHashes HashRunner(string path, long size, Func<IProgress<long>?, ModelHashes> compute);

    private static readonly object SharedLock = new();
    private static FileHasher? _shared;

    public FileHasher(HashCache cache, HashRunner? runner = null)
    {
        Cache = cache;
        Runner = runner;
    }

    /// <summary>
    /// The process-wide hasher over the default cache file (<see cref="HashCache.DefaultCacheFile"/>); a new one is
    /// made when <c>SHARPDIFFUSION_CACHE_DIR</c> now names another file.
    /// </summary>
    public static FileHasher Shared
    {
        get
        {
            lock (SharedLock)
            {
                string file = HashCache.DefaultCacheFile();
                if (_shared == null || _shared.Cache.CacheFile != file) _shared = new FileHasher(new HashCache(file));
                return _shared;
            }
        }
    }

    public HashCache Cache { get; }

    /// <summary>Wraps computations that are not cached yet (e.g. a progress bar for multi-GB checkpoints); null: none.</summary>
    public HashRunner? Runner { get; }

    /// <summary>The same cache with another <see cref="Runner"/>.</summary>
    public FileHasher WithRunner(HashRunner? runner) => new(Cache, runner);

    /// <summary>The file's hashes, from the cache when the file is unchanged. Throws when it cannot be read.</summary>
    public ModelHashes Get(string path)
    {
        // A diffusers folder: A1111's hashes of its weight files read one after another (not cached: the cache keys files).
        if (Directory.Exists(path)) return Conversion.CheckpointFiles.Hash(path);
        if (Cache.TryGet(path, out var cached)) return cached;
        var hashes = Runner == null
            ? ModelHashes.Compute(path)
            : Runner(path, new FileInfo(path).Length, progress => ModelHashes.Compute(path, progress));
        Cache.Set(path, hashes);
        return hashes;
    }

    /// <summary>The file's hashes only if the cache already has them for its current size and mtime (nothing is read).</summary>
    public ModelHashes? Cached(string path) => Cache.TryGet(path, out var hashes) ? hashes : null;

    /// <returns>The file's hashes, or null when <paramref name="path"/> is not a readable file (a folder model, an in-memory one).</returns>
    public ModelHashes? TryGet(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return Get(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// A1111's LoRA hash (<c>network.NetworkOnDisk</c>): the file's <c>sshs_model_hash</c> metadata when present, else
    /// for .safetensors the addnet hash (sha256 of the bytes after the header), else the sha256 of the whole file.
    /// Null when the file cannot be read. Its short form is the first 12 hex digits.
    /// </summary>
    public string? NetworkHash(string path, IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata != null && metadata.TryGetValue("sshs_model_hash", out var stored) && stored.Length > 0) return stored;
        var hashes = TryGet(path);
        if (hashes == null) return null;
        return path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) && hashes.AddNet != null ? hashes.AddNet : hashes.Sha256;
    }

    /// <summary>Writes new entries to the cache file; failing to write (read-only home) is not an error.</summary>
    public bool Save() => Cache.Save();
}
