using System.Text.Json;
using System.Text.Json.Serialization;

namespace SharpDiffusion.Hashing;

/// <summary>
/// Remembers file hashes between runs so a second scan costs nothing. Entries are keyed by the full path and are
/// valid while the file's size and modification time (UTC ticks) are unchanged. Stored as JSON at
/// <c>$SHARPDIFFUSION_CACHE_DIR/hashes.json</c>, else <c>~/.cache/sharpdiffusion/hashes.json</c>; rewritten
/// atomically (temp file + rename). A missing or corrupt cache file is treated as empty and replaced on save.
/// </summary>
public sealed class HashCache
{
    public const string CacheDirVariable = "SHARPDIFFUSION_CACHE_DIR";
    public const string FileName = "hashes.json";
    private const int FormatVersion = 1;

    private readonly Dictionary<string, Entry> _entries;
    private readonly object _lock = new();
    private bool _dirty;

    public HashCache(string? cacheFile = null)
    {
        CacheFile = cacheFile ?? DefaultCacheFile();
        (_entries, _dirty) = Load(CacheFile);
    }

    public string CacheFile { get; }

    public int Count
    {
        get { lock (_lock) return _entries.Count; }
    }

    /// <summary>Hits and misses since this cache was loaded (for reporting).</summary>
    public int Hits { get; private set; }
    public int Misses { get; private set; }

    public static string DefaultCacheFile()
    {
        string? dir = Environment.GetEnvironmentVariable(CacheDirVariable);
        if (string.IsNullOrWhiteSpace(dir))
            dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sharpdiffusion");
        return Path.Combine(dir, FileName);
    }

    /// <summary>The cached hashes when the file's size and modification time still match.</summary>
    public bool TryGet(string path, out ModelHashes hashes)
    {
        var info = new FileInfo(path);
        lock (_lock)
        {
            if (info.Exists && _entries.TryGetValue(info.FullName, out var e) && e.Size == info.Length
                && e.MtimeTicks == info.LastWriteTimeUtc.Ticks && e.Sha256 is { Length: 64 } && e.Legacy is { Length: 8 })
            {
                hashes = new ModelHashes(e.Sha256, e.Legacy, e.AddNet);
                Hits++;
                return true;
            }
            Misses++;
        }
        hashes = null!;
        return false;
    }

    public void Set(string path, ModelHashes hashes)
    {
        var info = new FileInfo(path);
        lock (_lock)
        {
            _entries[info.FullName] = new Entry
            {
                Size = info.Length,
                MtimeTicks = info.LastWriteTimeUtc.Ticks,
                Sha256 = hashes.Sha256,
                Legacy = hashes.Legacy,
                AddNet = hashes.AddNet,
            };
            _dirty = true;
        }
    }

    /// <summary>
    /// Cached hashes, or computes and remembers them. <paramref name="compute"/> lets a caller wrap the computation
    /// (a progress bar); by default the file is hashed without progress.
    /// </summary>
    public ModelHashes GetOrCompute(string path, Func<string, ModelHashes>? compute = null)
    {
        if (TryGet(path, out var cached)) return cached;
        var hashes = (compute ?? (p => ModelHashes.Compute(p)))(path);
        Set(path, hashes);
        return hashes;
    }

    /// <summary>Writes the cache if anything changed. Failure to write (read-only home) is not an error for callers.</summary>
    public bool Save()
    {
        string json;
        lock (_lock)
        {
            if (!_dirty) return true;
            var file = new CacheFileContent { Version = FormatVersion, Entries = new SortedDictionary<string, Entry>(_entries, StringComparer.Ordinal) };
            json = JsonSerializer.Serialize(file, CacheJson.Default.CacheFileContent);
        }
        try
        {
            string dir = Path.GetDirectoryName(Path.GetFullPath(CacheFile))!;
            Directory.CreateDirectory(dir);
            string temp = Path.Combine(dir, $".{FileName}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
            File.WriteAllText(temp, json);
            File.Move(temp, CacheFile, overwrite: true);
            lock (_lock) _dirty = false;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static (Dictionary<string, Entry> Entries, bool Dirty) Load(string cacheFile)
    {
        var empty = new Dictionary<string, Entry>(StringComparer.Ordinal);
        if (!File.Exists(cacheFile)) return (empty, false);
        try
        {
            var content = JsonSerializer.Deserialize(File.ReadAllBytes(cacheFile), CacheJson.Default.CacheFileContent);
            if (content?.Entries == null || content.Version != FormatVersion) return (empty, true);
            return (new Dictionary<string, Entry>(content.Entries, StringComparer.Ordinal), false);
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            // A corrupt cache only costs a rehash; it is rewritten on the next save.
            return (empty, true);
        }
    }

    internal sealed class CacheFileContent
    {
        [JsonPropertyName("version")] public int Version { get; set; }
        [JsonPropertyName("entries")] public IDictionary<string, Entry>? Entries { get; set; }
    }

    internal sealed class Entry
    {
        [JsonPropertyName("size")] public long Size { get; set; }
        [JsonPropertyName("mtime_ticks")] public long MtimeTicks { get; set; }
        [JsonPropertyName("sha256")] public string? Sha256 { get; set; }
        [JsonPropertyName("legacy")] public string? Legacy { get; set; }
        [JsonPropertyName("addnet")] public string? AddNet { get; set; }
    }
}

[JsonSerializable(typeof(HashCache.CacheFileContent))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class CacheJson : JsonSerializerContext;
