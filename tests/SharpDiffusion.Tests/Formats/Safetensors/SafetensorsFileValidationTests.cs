using System.Text;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Tests.Formats.Safetensors;

public class SafetensorsFileValidationTests
{
    private static void AssertInvalid(string path, string expectedProblem)
    {
        var e = Assert.Throws<InvalidModelFileException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(expectedProblem, e.Problem);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\r', e.Message);
    }

    private static void AssertInvalid(string headerJson, int dataBytes, string expectedProblem)
    {
        using var dir = new TempDir();
        AssertInvalid(RawSafetensors.Write(dir, headerJson, dataBytes), expectedProblem);
    }

    [Fact]
    public void EmptyFile()
    {
        using var dir = new TempDir();
        string path = dir.File("empty.safetensors");
        File.WriteAllBytes(path, []);
        AssertInvalid(path, "empty file");
    }

    [Fact]
    public void FileShorterThanTheLengthField()
    {
        using var dir = new TempDir();
        string path = dir.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5]);
        AssertInvalid(path, "truncated: 5 bytes");
    }

    [Fact]
    public void TruncatedInsideTheData()
    {
        using var dir = new TempDir();
        string path = dir.File("cut.safetensors");
        var full = RawSafetensors.Build("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 16);
        File.WriteAllBytes(path, full[..^5]);
        AssertInvalid(path, "run past the end of the data (11 bytes; file truncated?)");
    }

    [Fact]
    public void TruncatedInsideTheHeader()
    {
        using var dir = new TempDir();
        string path = dir.File("cut.safetensors");
        var full = RawSafetensors.Build("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 16);
        File.WriteAllBytes(path, full[..30]);
        AssertInvalid(path, "is larger than the file (30 bytes)");
    }

    [Fact]
    public void HeaderLengthLargerThanTheFile()
    {
        using var dir = new TempDir();
        AssertInvalid(RawSafetensors.Write(dir, "{}", 0, headerLengthField: 100), "header length 100 is larger than the file (10 bytes)");
    }

    [Fact]
    public void HeaderLengthOverTheCap()
    {
        using var dir = new TempDir();
        AssertInvalid(RawSafetensors.Write(dir, "{}", 0, headerLengthField: ulong.MaxValue), "exceeds the 100000000-byte limit");
    }

    [Fact]
    public void HeaderLengthTooSmallForJson()
    {
        using var dir = new TempDir();
        AssertInvalid(RawSafetensors.Write(dir, "{}", 0, headerLengthField: 1), "too small for a JSON object");
    }

    [Fact]
    public void HeaderNotJson() => AssertInvalid("{this is not json}", 0, "header is not valid JSON");

    [Fact]
    public void HeaderNotAnObject() => AssertInvalid("[1, 2, 3]", 0, "does not start with '{'");

    [Fact]
    public void HeaderNotUtf8()
    {
        using var dir = new TempDir();
        string path = dir.File("bad-utf8.safetensors");
        var header = Encoding.UTF8.GetBytes("""{"__metadata__":{"k":"vX"}}""");
        header[Array.IndexOf(header, (byte)'X')] = 0xC3; // a lead byte with no continuation
        File.WriteAllBytes(path, RawSafetensors.Build(header, 0));
        AssertInvalid(path, "not valid UTF-8");
    }

    [Theory]
    [InlineData("""{"\ud800":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}""")]
    [InlineData("""{"__metadata__":{"k":"\udc00x"}}""")]
    [InlineData("""{"__metadata__":{"\ud800\u0041":"v"}}""")]
    [InlineData("""{"a":{"dtype":"\ud800","shape":[0],"data_offsets":[0,0]}}""")]
    public void LoneSurrogateEscapes(string header) => AssertInvalid(header, 0, "invalid UTF-16 escape");

    [Fact]
    public void DeeplyNestedJson() =>
        AssertInvalid("{\"__metadata__\":" + new string('[', 64) + new string(']', 64) + "}", 0, "header is not valid JSON");

    [Fact]
    public void OffsetsPastTheEnd() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "run past the end of the data (4 bytes");

    [Fact]
    public void NegativeOffsets() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}""", 4, "data_offsets [-4,0] are not valid");

    [Fact]
    public void EndBeforeBegin() =>
        AssertInvalid("""{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}""", 4, "are not valid");

    [Fact]
    public void OverlappingTensors() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}""", 8,
            "overlaps the previous tensor's data");

    [Fact]
    public void GapBetweenTensors() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", 12,
            "gap of 4 bytes before tensor 'b'");

    [Fact]
    public void BytesAfterTheLastTensor() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 10, "6 bytes after the last tensor's data");

    [Fact]
    public void DataButNoTensors() => AssertInvalid("{}", 16, "16 bytes of data but the header lists no tensors");

    [Theory]
    [InlineData("F128")]
    [InlineData("f32")]
    [InlineData("Q4_0")]
    [InlineData("")]
    public void UnknownDType(string dtype) =>
        AssertInvalid($$$"""{"a":{"dtype":"{{{dtype}}}","shape":[1],"data_offsets":[0,4]}}""", 4, $"unknown dtype '{dtype}'");

    [Fact]
    public void DTypeNotAString() =>
        AssertInvalid("""{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}""", 4, "tensor 'a': missing dtype");

    [Fact]
    public void WrongByteLength() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}""", 20, "F32 2x3 needs 24 bytes but data_offsets span 20");

    [Fact]
    public void NegativeDimension() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4, "shape entry -1 is not a non-negative integer");

    [Fact]
    public void FractionalDimension() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""", 4, "shape entry 1.5 is not");

    [Fact]
    public void OverflowingShape() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}""", 4, "shape overflows");

    [Fact]
    public void MissingShape() =>
        AssertInvalid("""{"a":{"dtype":"F32","data_offsets":[0,4]}}""", 4, "tensor 'a': missing shape");

    [Fact]
    public void MissingOffsets() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[1]}}""", 4, "data_offsets must be [begin, end]");

    [Fact]
    public void ThreeOffsets() =>
        AssertInvalid("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}""", 4, "data_offsets must be [begin, end]");

    [Fact]
    public void TensorEntryNotAnObject() => AssertInvalid("""{"a":[1,2]}""", 0, "tensor 'a': entry is not a JSON object");

    [Fact]
    public void NonStringMetadata() =>
        AssertInvalid("""{"__metadata__":{"format":"pt","steps":1000}}""", 0, "__metadata__ value 'steps' is not a string (it is number)");

    [Fact]
    public void NestedMetadata() =>
        AssertInvalid("""{"__metadata__":{"nested":{"a":"b"}}}""", 0, "__metadata__ value 'nested' is not a string (it is object)");

    [Fact]
    public void MetadataNotAnObject() => AssertInvalid("""{"__metadata__":"text"}""", 0, "__metadata__ is not a JSON object");

    [Fact]
    public void DuplicateTensorName() =>
        AssertInvalid("""{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", 2,
            "tensor 'a' appears twice");

    [Fact]
    public void DuplicateMetadataKey() =>
        AssertInvalid("""{"__metadata__":{"k":"1","k":"2"}}""", 0, "__metadata__ key 'k' appears twice");

    [Fact]
    public void DuplicateMetadataSection() =>
        AssertInvalid("""{"__metadata__":{},"__metadata__":{}}""", 0, "__metadata__ appears twice");

    [Fact]
    public void ControlCharactersInNamesStayOnOneLine() =>
        AssertInvalid("{\"evil\\nname\\r\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "tensor 'evil\\nname\\r'");

    [Fact]
    public void VeryLongNamesAreShortenedInMessages()
    {
        string name = new('x', 5000);
        using var dir = new TempDir();
        string path = RawSafetensors.Write(dir, $$$"""{"{{{name}}}":{"dtype":"BF16","shape":[1],"data_offsets":[0,4]}}""", 4);
        var e = Assert.Throws<InvalidModelFileException>(() => SafetensorsFile.Open(path));
        Assert.True(e.Message.Length < 400, e.Message);
    }

    [Fact]
    public void MissingFileIsInvalidModelFile()
    {
        using var dir = new TempDir();
        AssertInvalid(dir.File("absent.safetensors"), "cannot open");
    }

    [Theory]
    [InlineData("F64", 8)]
    [InlineData("F32", 4)]
    [InlineData("F16", 2)]
    [InlineData("BF16", 2)]
    [InlineData("I64", 8)]
    [InlineData("I32", 4)]
    [InlineData("I16", 2)]
    [InlineData("I8", 1)]
    [InlineData("U8", 1)]
    [InlineData("BOOL", 1)]
    [InlineData("F8_E4M3", 1)]
    [InlineData("F8_E5M2", 1)]
    public void EveryDTypeIsAcceptedWithItsElementSize(string dtype, int elementSize)
    {
        using var dir = new TempDir();
        int bytes = 2 * 3 * elementSize;
        string path = RawSafetensors.Write(dir, $$$"""{"t":{"dtype":"{{{dtype}}}","shape":[2,3],"data_offsets":[0,{{{bytes}}}]}}""", bytes);
        using var file = SafetensorsFile.Open(path);
        var t = Assert.Single(file.Tensors);
        Assert.Equal(dtype, t.DType.SafetensorsName());
        Assert.Equal(dtype, t.TypeName);
        Assert.Equal(bytes, t.ByteLength);
        Assert.Equal([2L, 3L], t.Shape);
        var data = new byte[bytes];
        file.ReadTensorData(t, data);
        Assert.Equal(RawSafetensors.Build("{}", bytes)[10..], data);
    }

    [Fact]
    public void PaddedHeaderTensorsOutOfFileOrderAndMetadata()
    {
        // Header order differs from data order; trailing spaces pad the header (as the reference writer does).
        string json = """{"__metadata__":{"format":"pt","note":"é ✓"},"second":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"first":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"empty":{"dtype":"F32","shape":[0,5],"data_offsets":[6,6]}}""";
        json += new string(' ', (8 - Encoding.UTF8.GetByteCount(json) % 8) % 8);
        using var dir = new TempDir();
        string path = RawSafetensors.Write(dir, json, 6);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["second", "first", "empty"], file.Tensors.Select(t => t.Name));
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("é ✓", file.Metadata["note"]);
        Assert.Equal(8 + Encoding.UTF8.GetByteCount(json), file.DataStart);
        var second = new byte[2];
        file.ReadTensorData(file.Tensors[0], second);
        Assert.Equal(new byte[] { 4 * 7 + 1, 5 * 7 + 1 }, second);
        Assert.Equal(0, file.Tensors[2].ByteLength);
        file.ReadTensorData(file.Tensors[2], []);
    }

    [Fact]
    public void ReadTensorDataRefusesATensorOfAnotherFile()
    {
        using var dir = new TempDir();
        string path = RawSafetensors.Write(dir, """{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}""", 4);
        using var file = SafetensorsFile.Open(path);
        var foreign = file.Tensors[0] with { DataOffset = file.SizeBytes - 2 };
        Assert.Throws<ArgumentException>(() => file.ReadTensorData(foreign, new byte[4]));
        Assert.Throws<ArgumentException>(() => file.ReadTensorData(file.Tensors[0], new byte[3]));
    }

    [Fact]
    public void FileTruncatedAfterOpeningIsReportedNotCrashed()
    {
        using var dir = new TempDir();
        string path = RawSafetensors.Write(dir, """{"a":{"dtype":"U8","shape":[64],"data_offsets":[0,64]}}""", 64);
        using var file = SafetensorsFile.Open(path);
        using (var s = new FileStream(path, FileMode.Open, FileAccess.Write)) s.SetLength(20);
        var e = Assert.Throws<InvalidModelFileException>(() => file.ReadTensorData(file.Tensors[0], new byte[64]));
        Assert.Contains("changed size", e.Problem);
    }

    [Fact]
    public void GoldenFilesWrittenByPythonSafetensorsOpen()
    {
        var files = Directory.GetFiles(TestPaths.Golden, "*.safetensors", SearchOption.AllDirectories);
        Assert.True(files.Length >= 10, $"expected the golden safetensors files in {TestPaths.Golden}, found {files.Length}");
        foreach (var path in files)
        {
            using var file = SafetensorsFile.Open(path);
            Assert.NotEmpty(file.Tensors);
            Assert.Equal(file.SizeBytes, file.DataStart + file.Tensors.Sum(t => t.ByteLength));
        }
    }
}
