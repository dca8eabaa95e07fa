using System.Text;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Tests.Fixtures;

namespace SharpDiffusion.Tests.Diffusers;

public class ModelFileReaderTests
{
    [Fact]
    public void SafetensorsIsRecognisedByContentWhateverTheExtension()
    {
        using var dir = new TempDir();
        string path = dir.File("weights.ckpt");
        SparseSafetensors.Create(path, [("a", "F32", [2, 3])]);

        Assert.Equal(DetectedContent.Safetensors, ModelFileReader.Sniff(path));
        using var model = ModelFileReader.Open(path);
        Assert.IsType<SafetensorsFile>(model);
        Assert.Equal("a", model.Tensors.Single().Name);
    }

    [Theory]
    [InlineData(new byte[] { (byte)'P', (byte)'K', 3, 4, 20, 0, 0, 0 }, DetectedContent.Torch)]
    [InlineData(new byte[] { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46 }, DetectedContent.Torch)]
    [InlineData(new byte[] { 0x80, 0x04, 0x95, 0, 0, 0, 0, 0 }, DetectedContent.Torch)]
    [InlineData(new byte[] { (byte)'G', (byte)'G', (byte)'U', (byte)'F', 3, 0, 0, 0 }, DetectedContent.Gguf)]
    [InlineData(new byte[] { 0x80, 0x09, 0, 0 }, DetectedContent.Unknown)]
    [InlineData(new byte[] { 1, 2, 3 }, DetectedContent.Unknown)]
    public void FirstBytesDecideTheFormat(byte[] head, DetectedContent expected)
    {
        using var dir = new TempDir();
        string path = dir.File("model.bin");
        File.WriteAllBytes(path, [.. head, .. new byte[32]]);

        Assert.Equal(expected, ModelFileReader.Sniff(path));
    }

    [Fact]
    public void SafetensorsHeaderLongerThanTheFileIsNotSafetensors()
    {
        using var dir = new TempDir();
        string path = dir.File("cut.safetensors");
        var bytes = new byte[64];
        BitConverter.GetBytes(5000UL).CopyTo(bytes, 0);
        bytes[8] = (byte)'{';
        File.WriteAllBytes(path, bytes);

        Assert.Equal(DetectedContent.Unknown, ModelFileReader.Sniff(path));
        var e = Assert.Throws<InvalidModelFileException>(() => ModelFileReader.Open(path));
        Assert.Contains("truncated", e.Problem);
    }

    [Theory]
    [InlineData("<!DOCTYPE html><html><body>Not found</body></html>", "HTML")]
    [InlineData("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", "Git LFS pointer")]
    [InlineData("{\"not\": \"a model\"}", "JSON")]
    [InlineData("just some notes about models\n", "text")]
    public void UnknownContentIsDescribed(string content, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File("model.safetensors");
        File.WriteAllText(path, content, new UTF8Encoding(encoderShouldEmitUTF8Identifier: true));

        var e = Assert.Throws<InvalidModelFileException>(() => ModelFileReader.Open(path));

        Assert.Equal(path, e.FilePath);
        Assert.StartsWith("not a model file: first bytes ", e.Problem);
        Assert.Contains(expected, e.Problem);
    }

    [Fact]
    public void EmptyFileIsReportedAsEmpty()
    {
        using var dir = new TempDir();
        string path = dir.File("empty.pt");
        File.WriteAllBytes(path, []);

        var e = Assert.Throws<InvalidModelFileException>(() => ModelFileReader.Open(path));

        Assert.Contains("empty", e.Problem);
    }

    [Fact]
    public void FolderWithoutAModelIsAClearError()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("notes.txt"), "hello");

        var e = Assert.Throws<InvalidModelFileException>(() => ModelFileReader.Open(dir.Path));

        Assert.Contains("holds no model", e.Problem);
    }

    [Fact]
    public void MissingPathIsAClearError()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<InvalidModelFileException>(() => ModelFileReader.Open(dir.File("nope.safetensors")));

        Assert.Contains("no such file", e.Problem);
    }
}
