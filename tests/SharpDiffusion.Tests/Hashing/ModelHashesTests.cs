using System.Security.Cryptography;
using SharpDiffusion.Hashing;
using SharpDiffusion.Tests.Fixtures;

namespace SharpDiffusion.Tests.Hashing;

public class ModelHashesTests
{
    private static byte[] Pattern(int length, int seed = 7)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static string Sha(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(SHA256.HashData(data));

    [Theory]
    [InlineData("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [InlineData("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [InlineData("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")]
    public void Sha256MatchesKnownVectors(string text, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File("f.bin");
        File.WriteAllText(path, text);

        var h = ModelHashes.Compute(path);

        Assert.Equal(expected, h.Sha256);
        Assert.Equal(expected[..10], h.Short);
        Assert.Null(h.AddNet);
    }

    [Fact]
    public void LegacyHashIsTheSliceAtOneMebibyte()
    {
        using var dir = new TempDir();
        string path = dir.File("model.ckpt");
        var bytes = Pattern(0x180000);
        File.WriteAllBytes(path, bytes);

        var h = ModelHashes.Compute(path);

        Assert.Equal(Sha(bytes.AsSpan(0x100000, 0x10000))[..8], h.Legacy);
        Assert.Equal(Sha(bytes), h.Sha256);
    }

    [Fact]
    public void LegacyHashOfAFileEndingInsideTheSliceUsesWhatIsThere()
    {
        using var dir = new TempDir();
        string path = dir.File("short.ckpt");
        var bytes = Pattern(0x100000 + 1000);
        File.WriteAllBytes(path, bytes);

        Assert.Equal(Sha(bytes.AsSpan(0x100000))[..8], ModelHashes.Compute(path).Legacy);
    }

    [Fact]
    public void LegacyHashOfAFileUnderOneMebibyteIsTheEmptyHash()
    {
        using var dir = new TempDir();
        string path = dir.File("tiny.pt");
        File.WriteAllBytes(path, Pattern(5000));

        // A1111 seeks past the end, reads nothing, and hashes the empty input.
        Assert.Equal("e3b0c442", ModelHashes.Compute(path).Legacy);
    }

    [Fact]
    public void HashesSpanningSeveralBuffersMatchOneShotHashes()
    {
        using var dir = new TempDir();
        string path = dir.File("big.safetensors");
        SparseSafetensors.Create(path, [("w", "U8", [ModelHashes.BufferSize * 2L + 12345])], new Dictionary<string, string> { ["note"] = "x" },
            _ => Pattern(ModelHashes.BufferSize * 2 + 12345, seed: 3));
        var bytes = File.ReadAllBytes(path);
        long headerLength = BitConverter.ToInt64(bytes, 0);

        var h = ModelHashes.Compute(path);

        Assert.Equal(Sha(bytes), h.Sha256);
        Assert.Equal(Sha(bytes.AsSpan(0x100000, 0x10000))[..8], h.Legacy);
        Assert.Equal(Sha(bytes.AsSpan((int)(8 + headerLength))), h.AddNet);
    }

    [Fact]
    public void AddNetHashIgnoresTheHeaderSoMetadataEditsDoNotChangeIt()
    {
        using var dir = new TempDir();
        var data = Pattern(4096, seed: 11);
        string a = dir.File("a.safetensors"), b = dir.File("b.safetensors");
        SparseSafetensors.Create(a, [("lora_up.weight", "F32", [32, 32])], new Dictionary<string, string> { ["ss_output_name"] = "first" }, _ => data);
        SparseSafetensors.Create(b, [("lora_up.weight", "F32", [32, 32])], new Dictionary<string, string> { ["ss_output_name"] = "second, renamed" }, _ => data);

        var ha = ModelHashes.Compute(a);
        var hb = ModelHashes.Compute(b);

        Assert.Equal(Sha(data), ha.AddNet);
        Assert.Equal(ha.AddNet, hb.AddNet);
        Assert.NotEqual(ha.Sha256, hb.Sha256);
    }

    [Fact]
    public void ProgressReportsBytesReadUpToTheFileSize()
    {
        using var dir = new TempDir();
        string path = dir.File("p.bin");
        File.WriteAllBytes(path, Pattern(ModelHashes.BufferSize + 100));
        var reports = new List<long>();

        ModelHashes.Compute(path, new SyncProgress(reports.Add));

        Assert.Equal([ModelHashes.BufferSize, ModelHashes.BufferSize + 100L], reports);
    }

    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
