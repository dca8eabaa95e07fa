using System.Buffers.Binary;
using System.Text;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Tests.Formats.Safetensors;

public class SafetensorsWriterTests
{
    private static readonly TensorDType[] AllDTypes =
    [
        TensorDType.F64, TensorDType.F32, TensorDType.F16, TensorDType.BF16, TensorDType.I64, TensorDType.I32,
        TensorDType.I16, TensorDType.I8, TensorDType.U8, TensorDType.Bool, TensorDType.F8_E4M3, TensorDType.F8_E5M2,
    ];

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Collects progress synchronously (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class ProgressLog : IProgress<long>
    {
        public List<long> Values { get; } = [];
        public void Report(long value) => Values.Add(value);
    }

    private static string[] FilesIn(TempDir dir) => Directory.GetFiles(dir.Path).Select(Path.GetFileName).ToArray()!;

    [Fact]
    public void RoundTripsEveryDTypeInTheGivenOrder()
    {
        using var dir = new TempDir();
        string path = dir.File("all.safetensors");
        var expected = new List<(string Name, TensorDType DType, long[] Shape, byte[] Data)>();
        for (int i = 0; i < AllDTypes.Length; i++)
        {
            var dtype = AllDTypes[i];
            long[] shape = [i + 1, 3];
            // Names deliberately not in sorted order: the writer keeps the caller's order.
            expected.Add(($"z{AllDTypes.Length - i}.{dtype}", dtype, shape, RandomBytes((i + 1) * 3 * dtype.ElementSize(), i)));
        }
        SafetensorsWriter.Write(path, expected.Select(e => TensorToWrite.FromBytes(e.Name, e.DType, e.Shape, e.Data)));

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(expected.Select(e => e.Name), file.Tensors.Select(t => t.Name));
        long previousOffset = -1;
        for (int i = 0; i < expected.Count; i++)
        {
            var t = file.Tensors[i];
            Assert.Equal(expected[i].DType, t.DType);
            Assert.Equal(expected[i].Shape, t.Shape);
            Assert.True(t.DataOffset > previousOffset);
            previousOffset = t.DataOffset;
            var data = new byte[t.ByteLength];
            file.ReadTensorData(t, data);
            Assert.Equal(expected[i].Data, data);
        }
        Assert.Empty(file.Metadata);
        Assert.Equal(["all.safetensors"], FilesIn(dir));
    }

    [Fact]
    public void MetadataRoundTripsAndComesFirst()
    {
        using var dir = new TempDir();
        string path = dir.File("meta.safetensors");
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["ss_tag_frequency"] = """{"a": {"b": 1}}""",
            ["quote\"and\\backslash"] = "line1\nline2\t✓ é 日本",
            ["empty"] = "",
        };
        SafetensorsWriter.Write(path, [TensorToWrite.FromBytes("w", TensorDType.F32, [1], new byte[4])], metadata);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(metadata.OrderBy(kv => kv.Key), file.Metadata.OrderBy(kv => kv.Key));
        string header = Encoding.UTF8.GetString(File.ReadAllBytes(path), 8, (int)file.DataStart - 8);
        Assert.StartsWith("{\"__metadata__\":{", header);
        Assert.Contains("日本", header); // readable, not \u-escaped
    }

    [Fact]
    public void EmptyTensorsAndScalars()
    {
        using var dir = new TempDir();
        string path = dir.File("edge.safetensors");
        var scalar = new byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(scalar, 0.18215f);
        SafetensorsWriter.Write(path,
        [
            TensorToWrite.FromBytes("empty", TensorDType.F16, [0, 768], ReadOnlyMemory<byte>.Empty),
            TensorToWrite.FromBytes("scale", TensorDType.F32, [], scalar),
            TensorToWrite.FromBytes("zero_d_empty", TensorDType.BF16, [3, 0], ReadOnlyMemory<byte>.Empty),
            TensorToWrite.FromBytes("step", TensorDType.I64, [], BitConverter.GetBytes(1000L)),
        ]);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal([0L, 768L], file.Tensors[0].Shape);
        Assert.Equal(0, file.Tensors[0].ByteLength);
        Assert.Empty(file.Tensors[1].Shape);
        Assert.Equal(1, file.Tensors[1].ElementCount);
        var read = new byte[4];
        file.ReadTensorData(file.Tensors[1], read);
        Assert.Equal(0.18215f, BinaryPrimitives.ReadSingleLittleEndian(read));
        var step = new byte[8];
        file.ReadTensorData(file.Tensors[3], step);
        Assert.Equal(1000L, BitConverter.ToInt64(step));
    }

    [Fact]
    public void NoTensorsAtAll()
    {
        using var dir = new TempDir();
        string path = dir.File("none.safetensors");
        SafetensorsWriter.Write(path, [], new Dictionary<string, string> { ["k"] = "v" });
        using var file = SafetensorsFile.Open(path);
        Assert.Empty(file.Tensors);
        Assert.Equal("v", file.Metadata["k"]);
    }

    [Fact]
    public void HeaderIsSpacePaddedToAMultipleOfEight()
    {
        using var dir = new TempDir();
        for (int nameLength = 1; nameLength <= 8; nameLength++)
        {
            string path = dir.File($"pad{nameLength}.safetensors");
            SafetensorsWriter.Write(path, [TensorToWrite.FromBytes(new string('n', nameLength), TensorDType.U8, [1], new byte[] { 9 })]);
            var bytes = File.ReadAllBytes(path);
            long headerLength = BitConverter.ToInt64(bytes, 0);
            Assert.Equal(0, headerLength % 8);
            string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
            Assert.Matches("^\\{.*\\} {0,7}$", header);
            Assert.Equal(9, bytes[8 + headerLength]);
            Assert.Equal(8 + headerLength + 1, bytes.Length);
        }
    }

    [Fact]
    public void StreamsInChunksAndReportsProgress()
    {
        using var dir = new TempDir();
        string path = dir.File("chunks.safetensors");
        var data = RandomBytes(3 * 1000 * 4, 5);
        var progress = new ProgressLog();
        var chunked = new TensorToWrite("big", TensorDType.F32, [3, 1000], stream =>
        {
            for (int offset = 0; offset < data.Length; offset += 1000) stream.Write(data, offset, 1000);
        });
        SafetensorsWriter.Write(path, [chunked, TensorToWrite.FromBytes("small", TensorDType.U8, [5], new byte[5])], progress: progress);
        Assert.Equal(13, progress.Values.Count);
        Assert.Equal(1000, progress.Values[0]);
        Assert.Equal(12_005, progress.Values[^1]);
        using var file = SafetensorsFile.Open(path);
        var read = new byte[data.Length];
        file.ReadTensorData(file.Tensors[0], read);
        Assert.Equal(data, read);
    }

    [Fact]
    public void ReplacesAnExistingFile()
    {
        using var dir = new TempDir();
        string path = dir.File("out.safetensors");
        File.WriteAllText(path, "old contents");
        SafetensorsWriter.Write(path, [TensorToWrite.FromBytes("a", TensorDType.U8, [2], new byte[] { 1, 2 })]);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal("a", Assert.Single(file.Tensors).Name);
        Assert.Equal(["out.safetensors"], FilesIn(dir));
    }

    [Fact]
    public void ACallbackThatThrowsLeavesNoFileAndNoTemp()
    {
        using var dir = new TempDir();
        string path = dir.File("fail.safetensors");
        var tensors = new[]
        {
            TensorToWrite.FromBytes("ok", TensorDType.U8, [4], new byte[4]),
            new TensorToWrite("boom", TensorDType.F32, [1024], stream =>
            {
                stream.Write(new byte[100]);
                throw new IOException("source disk vanished");
            }),
        };
        var e = Assert.Throws<IOException>(() => SafetensorsWriter.Write(path, tensors));
        Assert.Equal("source disk vanished", e.Message);
        Assert.Empty(FilesIn(dir));
    }

    [Fact]
    public void AFailedWriteLeavesTheExistingFileUntouched()
    {
        using var dir = new TempDir();
        string path = dir.File("keep.safetensors");
        File.WriteAllText(path, "previous model");
        Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path,
            [new TensorToWrite("short", TensorDType.F16, [8], stream => stream.Write(new byte[10]))]));
        Assert.Equal("previous model", File.ReadAllText(path));
        Assert.Equal(["keep.safetensors"], FilesIn(dir));
    }

    [Fact]
    public void TooFewBytesIsAnError()
    {
        using var dir = new TempDir();
        string path = dir.File("short.safetensors");
        var e = Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path,
            [new TensorToWrite("short", TensorDType.F16, [2, 4], stream => stream.Write(new byte[10]))]));
        Assert.Contains("'short' wrote 10 bytes, its F16 [2, 4] needs 16", e.Message);
        Assert.Empty(FilesIn(dir));
    }

    [Fact]
    public void TooManyBytesIsAnError()
    {
        using var dir = new TempDir();
        string path = dir.File("long.safetensors");
        var e = Assert.Throws<InvalidOperationException>(() => SafetensorsWriter.Write(path,
            [new TensorToWrite("long", TensorDType.U8, [4], stream => { stream.Write(new byte[3]); stream.Write(new byte[3]); })]));
        Assert.Contains("'long' wrote more than its 4 bytes", e.Message);
        Assert.Empty(FilesIn(dir));
    }

    [Theory]
    [InlineData("__metadata__", TensorDType.F32, new long[] { 1 }, "reserved")]
    [InlineData("q", TensorDType.Quantized, new long[] { 32 }, "block-quantized")]
    [InlineData("neg", TensorDType.F32, new long[] { 2, -1 }, "shape [2, -1] is invalid")]
    [InlineData("huge", TensorDType.F64, new long[] { 1L << 40, 1L << 40 }, "is invalid")]
    public void InvalidTensorsAreRefusedBeforeAnythingIsWritten(string name, TensorDType dtype, long[] shape, string problem)
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(dir.File("x.safetensors"),
            [new TensorToWrite(name, dtype, shape, _ => { })]));
        Assert.Contains(problem, e.Message);
        Assert.Empty(FilesIn(dir));
    }

    [Fact]
    public void DuplicateNamesAreRefused()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(dir.File("x.safetensors"),
        [
            TensorToWrite.FromBytes("a", TensorDType.U8, [1], new byte[1]),
            TensorToWrite.FromBytes("a", TensorDType.U8, [1], new byte[1]),
        ]));
        Assert.Contains("'a' is listed twice", e.Message);
    }

    [Fact]
    public void CopiesTensorsFromAnotherModelFile()
    {
        using var dir = new TempDir();
        string source = dir.File("source.safetensors");
        var data = RandomBytes(64, 9);
        SafetensorsWriter.Write(source, [TensorToWrite.FromBytes("w", TensorDType.BF16, [4, 8], data)]);
        string copy = dir.File("copy.safetensors");
        using (var file = SafetensorsFile.Open(source))
            SafetensorsWriter.Write(copy, file.Tensors.Select(t => TensorToWrite.FromModelFile(file, t, "renamed." + t.Name)));
        using var copied = SafetensorsFile.Open(copy);
        var t = Assert.Single(copied.Tensors);
        Assert.Equal("renamed.w", t.Name);
        var read = new byte[64];
        copied.ReadTensorData(t, read);
        Assert.Equal(data, read);
    }

    [Fact]
    public void SparseFileHasFullLengthAndReadsAsZeros()
    {
        using var dir = new TempDir();
        string path = dir.File("sparse.safetensors");
        // 2.5 GB of declared data: the file is that long but (on Linux file systems) occupies almost nothing.
        var tensors = new[]
        {
            new TensorInfo("model.diffusion_model.big", TensorDType.F32, [640, 1024, 1024]),
            new TensorInfo("model.diffusion_model.small", TensorDType.F16, [320]),
        };
        SafetensorsWriter.WriteSparse(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(file.DataStart + 640L * 1024 * 1024 * 4 + 640, file.SizeBytes);
        Assert.Equal(new FileInfo(path).Length, file.SizeBytes);
        Assert.Equal("pt", file.Metadata["format"]);
        var small = new byte[640];
        small[3] = 1;
        file.ReadTensorData(file.Tensors[1], small);
        Assert.All(small, b => Assert.Equal(0, b));
        Assert.Equal(["sparse.safetensors"], FilesIn(dir));
    }

    [Fact]
    public void RewritingAGoldenFileGivesIdenticalTensors()
    {
        string golden = TestPaths.GoldenFile("rng.safetensors");
        using var dir = new TempDir();
        string copy = dir.File("rng.safetensors");
        using var original = SafetensorsFile.Open(golden);
        SafetensorsWriter.Write(copy, original.Tensors.Select(t => TensorToWrite.FromModelFile(original, t)),
            original.Metadata.ToDictionary());
        using var rewritten = SafetensorsFile.Open(copy);
        Assert.Equal(original.Tensors.Select(t => (t.Name, t.DType, t.ShapeText)), rewritten.Tensors.Select(t => (t.Name, t.DType, t.ShapeText)));
        Assert.Equal(original.Metadata.OrderBy(kv => kv.Key), rewritten.Metadata.OrderBy(kv => kv.Key));
        for (int i = 0; i < original.Tensors.Count; i++)
        {
            var a = new byte[original.Tensors[i].ByteLength];
            var b = new byte[a.Length];
            original.ReadTensorData(original.Tensors[i], a);
            rewritten.ReadTensorData(rewritten.Tensors[i], b);
            Assert.Equal(a, b);
        }
    }

    [Fact]
    public void SparseSd15CheckpointFromTheReferenceInventory()
    {
        string tsv = TestPaths.ReferenceFile("sd15_single_file.tsv");
        var tensors = File.ReadLines(tsv).Select(line => line.Split('\t')).Select(p =>
        {
            Assert.True(TensorDTypeExtensions.TryParseSafetensorsName(p[1], out var dtype), p[1]);
            var shape = p[2].Trim('[', ']').Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
            return new TensorInfo(p[0], dtype, shape);
        }).ToList();
        using var dir = new TempDir();
        string path = dir.File("v1-5-pruned-emaonly.safetensors");
        SafetensorsWriter.WriteSparse(path, tensors);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(1143, file.Tensors.Count);
        Assert.Equal(tensors.Select(t => (t.Name, t.DType, t.ShapeText)), file.Tensors.Select(t => (t.Name, t.DType, t.ShapeText)));
        Assert.Equal(file.DataStart + tensors.Sum(t => t.ByteLength), file.SizeBytes);
        Assert.Equal(0, file.DataStart % 8);
    }
}
