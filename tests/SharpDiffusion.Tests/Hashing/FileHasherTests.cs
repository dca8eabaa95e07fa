using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using SharpDiffusion.Hashing;

namespace SharpDiffusion.Tests.Hashing;

/// <summary>The one hashing service: cached by path/size/mtime, A1111's LoRA hash rule, unreadable paths give null.</summary>
[Collection(CacheDirCollection.Name)]
public class FileHasherTests
{
    /// <summary>A minimal safetensors file: 8-byte header length, header JSON, then <paramref name="data"/>.</summary>
    private static void WriteSafetensors(string path, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes($"{{\"t\":{{\"dtype\":\"U8\",\"shape\":[{data.Length}],\"data_offsets\":[0,{data.Length}]}}}}");
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        File.WriteAllBytes(path, bytes);
    }

    private static string Sha(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    [Fact]
    public void NetworkHashIsStoredMetadataElseTheDataAfterTheHeaderElseTheWholeFile()
    {
        using var dir = new TempDir();
        var hasher = new FileHasher(new HashCache(dir.File("cache.json")));
        var data = new byte[] { 1, 2, 3, 4, 5, 6, 7, 8 };
        WriteSafetensors(dir.File("a.safetensors"), data);
        File.WriteAllBytes(dir.File("b.pt"), data);

        Assert.Equal(Sha(data), hasher.NetworkHash(dir.File("a.safetensors"), null));
        Assert.Equal("abc", hasher.NetworkHash(dir.File("a.safetensors"), new Dictionary<string, string> { ["sshs_model_hash"] = "abc" }));
        Assert.Equal(Sha(data), hasher.NetworkHash(dir.File("b.pt"), null));
        Assert.Equal(Sha(File.ReadAllBytes(dir.File("a.safetensors"))), hasher.Get(dir.File("a.safetensors")).Sha256);
        Assert.Null(hasher.NetworkHash(dir.File("missing.safetensors"), null));
        Assert.Null(hasher.TryGet(dir.Path)); // a folder is not a file
    }

    [Fact]
    public void ASecondRequestIsServedFromTheCacheUntilTheFileChanges()
    {
        using var dir = new TempDir();
        var path = dir.File("m.bin");
        File.WriteAllBytes(path, [1, 2, 3]);
        int computed = 0;
        var hasher = new FileHasher(new HashCache(dir.File("cache.json")), (_, _, compute) =>
        {
            computed++;
            return compute(null);
        });

        var first = hasher.Get(path);
        Assert.Equal(first, hasher.Get(path));
        Assert.Equal(1, computed);

        File.WriteAllBytes(path, [1, 2, 3, 4]);
        Assert.Equal(Sha([1, 2, 3, 4]), hasher.Get(path).Sha256);
        Assert.Equal(2, computed);

        Assert.True(hasher.Save());
        Assert.True(new HashCache(dir.File("cache.json")).TryGet(path, out var saved));
        Assert.Equal(Sha([1, 2, 3, 4]), saved.Sha256);
    }

    [Fact]
    public void TheSharedHasherFollowsTheCacheDirectoryVariable()
    {
        using var dir = new TempDir();
        using (new HashCacheDirOverride(dir.File("one")))
            Assert.Equal(Path.Combine(dir.File("one"), HashCache.FileName), FileHasher.Shared.Cache.CacheFile);
        using (new HashCacheDirOverride(dir.File("two")))
            Assert.Equal(Path.Combine(dir.File("two"), HashCache.FileName), FileHasher.Shared.Cache.CacheFile);
    }
}
