using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Torch;
using SharpDiffusion.Tests.Fixtures.Torch;

namespace SharpDiffusion.Tests.Formats.Torch;

public class TorchFileErrorTests
{
    private static InvalidModelFileException Fails(string path)
    {
        var e = Assert.Throws<InvalidModelFileException>(() => TorchFile.Open(path).Dispose());
        Assert.Equal(path, e.FilePath);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void EmptyFile()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("e.pt"), []);
        Assert.Equal("empty file", Fails(dir.File("e.pt")).Problem);
    }

    [Fact]
    public void MissingFile()
    {
        using var dir = new TempDir();
        Assert.StartsWith("cannot open", Fails(dir.File("nope.pt")).Problem);
    }

    [Fact]
    public void TextFileIsNotATorchFile()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("t.pt"), "hello world, not a checkpoint");
        Assert.StartsWith("not a torch file", Fails(dir.File("t.pt")).Problem);
    }

    [Fact]
    public void BadLegacyMagic()
    {
        using var dir = new TempDir();
        string path = dir.File("m.pt");
        TorchFixtures.SdCheckpoint().Write(path, zip: false);
        var bytes = File.ReadAllBytes(path);
        bytes[5] ^= 0x55; // inside the LONG1 magic number
        File.WriteAllBytes(path, bytes);
        Assert.Equal("not a torch file (bad magic number)", Fails(path).Problem);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TruncatedFiles(bool zip)
    {
        using var dir = new TempDir();
        string path = dir.File("t.pt");
        TorchFixtures.SdCheckpoint().Write(path, zip);
        var bytes = File.ReadAllBytes(path);
        foreach (int keep in new[] { 1, 7, 40, 120, bytes.Length / 2, bytes.Length - 30, bytes.Length - 1 })
        {
            File.WriteAllBytes(path, bytes[..keep]);
            Fails(path);
        }
    }

    [Fact]
    public void TruncatedLegacyPickleSaysSo()
    {
        using var dir = new TempDir();
        string path = dir.File("t.pt");
        TorchFixtures.SdCheckpoint().Write(path, zip: false);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..200]);
        Assert.Contains("truncated", Fails(path).Problem);
    }

    [Fact]
    public void ZipWithoutDataPkl()
    {
        using var dir = new TempDir();
        string path = dir.File("z.pt");
        File.WriteAllBytes(path, TorchFixtureWriter.ZipBytes([("readme.txt", "hi"u8.ToArray()), ("folder/other.bin", [1, 2, 3])]));
        Assert.Equal("zip archive has no <folder>/data.pkl (not a torch file)", Fails(path).Problem);
    }

    [Fact]
    public void MissingStorageMember()
    {
        using var dir = new TempDir();
        string path = dir.File("s.pt");
        var fx = TorchFixtures.SdCheckpoint();
        TorchFixtureWriter.WriteZip(path, fx.Root, fx.Storages, new() { OmitStorage = "3" });
        Assert.Equal("storage member 'archive/data/3' is missing", Fails(path).Problem);
    }

    [Fact]
    public void StorageMemberShorterThanThePickleSays()
    {
        using var dir = new TempDir();
        string path = dir.File("s.pt");
        var storages = new Dictionary<string, FixtureStorage> { ["0"] = FixtureStorage.F32(TorchFixtures.Ramp(24)) };
        var pickle = TorchPickler.Pickle(new FixtureDict { { "w", new FixtureTensor("0", 0, [24], [1]) } }, storages, legacy: false);
        File.WriteAllBytes(path, TorchFixtureWriter.ZipBytes([("archive/data.pkl", pickle), ("archive/data/0", new byte[40])]));
        Assert.Equal("storage member 'archive/data/0' holds 40 bytes, the pickle says 24 x FloatStorage (96 bytes)", Fails(path).Problem);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TensorLargerThanItsStorage(bool zip)
    {
        using var dir = new TempDir();
        string path = dir.File("s.pt");
        var storages = new Dictionary<string, FixtureStorage> { ["0"] = FixtureStorage.F32(TorchFixtures.Ramp(12)) };
        var root = new FixtureDict { { "w", new FixtureTensor("0", 2, [4, 3], [3, 1]) } };
        new TorchFixtures.Fixture(root, storages).Write(path, zip);
        var e = Fails(path);
        Assert.Contains("tensor 'w' [4, 3] at offset 2 needs 14 elements but storage '0' holds 12", e.Problem);
    }

    [Fact]
    public void BigEndianZipIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("b.pt");
        var fx = TorchFixtures.SdCheckpoint();
        TorchFixtureWriter.WriteZip(path, fx.Root, fx.Storages, new() { ByteOrder = "big" });
        Assert.Contains("byte order 'big' is not supported", Fails(path).Problem);
    }

    [Fact]
    public void BigEndianLegacyIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("b.pt");
        var fx = TorchFixtures.SdCheckpoint();
        TorchFixtureWriter.WriteLegacy(path, fx.Root, fx.Storages, littleEndian: false);
        Assert.Contains("big-endian", Fails(path).Problem);
    }

    [Fact]
    public void LegacyTarIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("tar.pt");
        var bytes = new byte[1024];
        "ustar"u8.CopyTo(bytes.AsSpan(257));
        File.WriteAllBytes(path, bytes);
        Assert.Equal("the legacy tar torch format is not supported", Fails(path).Problem);
    }

    [Fact]
    public void ReadTensorDataChecksTheDestination()
    {
        using var dir = new TempDir();
        string path = dir.File("m.pt");
        TorchFixtures.SdCheckpoint().Write(path, zip: true);
        using var f = TorchFile.Open(path);
        Assert.Throws<ArgumentException>(() => f.ReadTensorData(f.Tensors[0], new byte[3]));
        var forged = f.Tensors[0] with { DataOffset = 1 << 20 };
        Assert.Throws<ArgumentException>(() => f.ReadTensorData(forged, new byte[forged.ByteLength]));
    }
}
