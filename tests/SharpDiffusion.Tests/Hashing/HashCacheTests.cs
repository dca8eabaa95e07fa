using System.Text.Json;
using SharpDiffusion.Hashing;

namespace SharpDiffusion.Tests.Hashing;

[Collection(CacheDirCollection.Name)]
public class HashCacheTests
{
    private static string WriteFile(TempDir dir, string name, string content)
    {
        string path = dir.File(name);
        File.WriteAllText(path, content);
        return path;
    }

    [Fact]
    public void SecondLookupIsAHitAndSurvivesReload()
    {
        using var dir = new TempDir();
        string file = WriteFile(dir, "m.ckpt", "abc");
        string cacheFile = dir.File("cache/hashes.json");
        var cache = new HashCache(cacheFile);
        int computed = 0;
        ModelHashes Compute(string p) { computed++; return ModelHashes.Compute(p); }

        var first = cache.GetOrCompute(file, Compute);
        var second = cache.GetOrCompute(file, Compute);
        Assert.True(cache.Save());
        var reloaded = new HashCache(cacheFile);
        var third = reloaded.GetOrCompute(file, Compute);

        Assert.Equal(1, computed);
        Assert.Equal(first, second);
        Assert.Equal(first, third);
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", third.Sha256);
        Assert.Equal(1, reloaded.Hits);
    }

    [Fact]
    public void ChangedModificationTimeOrSizeIsAMiss()
    {
        using var dir = new TempDir();
        string file = WriteFile(dir, "m.safetensors", "abc");
        var cache = new HashCache(dir.File("hashes.json"));
        cache.GetOrCompute(file);

        File.SetLastWriteTimeUtc(file, File.GetLastWriteTimeUtc(file).AddSeconds(5));
        Assert.False(cache.TryGet(file, out _));
        cache.GetOrCompute(file);
        Assert.True(cache.TryGet(file, out _));

        var mtime = File.GetLastWriteTimeUtc(file);
        File.WriteAllText(file, "abcd");
        File.SetLastWriteTimeUtc(file, mtime);
        Assert.False(cache.TryGet(file, out _));
        Assert.Equal("88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589", cache.GetOrCompute(file).Sha256);
    }

    [Fact]
    public void CorruptCacheFileIsIgnoredAndRewritten()
    {
        using var dir = new TempDir();
        string file = WriteFile(dir, "m.pt", "abc");
        string cacheFile = dir.File("hashes.json");
        File.WriteAllText(cacheFile, "{\"version\": 1, \"entries\": {\"x\": [");

        var cache = new HashCache(cacheFile);
        Assert.Equal(0, cache.Count);
        cache.GetOrCompute(file);
        Assert.True(cache.Save());

        using var doc = JsonDocument.Parse(File.ReadAllText(cacheFile));
        var entry = doc.RootElement.GetProperty("entries").GetProperty(Path.GetFullPath(file));
        Assert.Equal(3, entry.GetProperty("size").GetInt64());
        Assert.Equal("e3b0c442", entry.GetProperty("legacy").GetString());
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
        Assert.Equal(0, new HashCache(cacheFile).Misses);
    }

    [Fact]
    public void DefaultLocationFollowsTheEnvironmentVariable()
    {
        using var dir = new TempDir();
        string? previous = Environment.GetEnvironmentVariable(HashCache.CacheDirVariable);
        try
        {
            Environment.SetEnvironmentVariable(HashCache.CacheDirVariable, dir.Path);
            Assert.Equal(Path.Combine(dir.Path, "hashes.json"), new HashCache().CacheFile);
            Environment.SetEnvironmentVariable(HashCache.CacheDirVariable, null);
            Assert.EndsWith(Path.Combine(".cache", "sharpdiffusion", "hashes.json"), HashCache.DefaultCacheFile());
        }
        finally
        {
            Environment.SetEnvironmentVariable(HashCache.CacheDirVariable, previous);
        }
    }
}
