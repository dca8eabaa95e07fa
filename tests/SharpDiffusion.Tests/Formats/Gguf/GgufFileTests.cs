using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Gguf;

namespace SharpDiffusion.Tests.Formats.Gguf;

public class GgufFileTests
{
    private static GgufFile OpenBuilt(TempDir dir, GgufTestWriter writer) => GgufFile.Open(writer.Write(dir));

    [Fact]
    public void StableDiffusionCppStyleModel()
    {
        using var dir = new TempDir();
        var conv = GgufTestWriter.Pattern(320 * 4 * 3 * 3 * 2, 1);
        var writer = new GgufTestWriter()
            .String("general.architecture", "stable-diffusion")
            .UInt32("general.quantization_version", 2)
            .Tensor("model.diffusion_model.input_blocks.0.0.weight", GgmlType.F16, [320, 4, 3, 3], conv)
            .Tensor("model.diffusion_model.input_blocks.0.0.bias", GgmlType.F32, [320])
            .Tensor("model.diffusion_model.input_blocks.1.1.proj_in.weight", GgmlType.Q8_0, [320, 320])
            .Tensor("model.diffusion_model.middle_block.1.transformer_blocks.0.ff.net.0.proj.weight", GgmlType.Q4_K, [10240, 1280])
            .Tensor("first_stage_model.decoder.conv_in.weight", GgmlType.BF16, [512, 4, 3, 3]);
        using var file = OpenBuilt(dir, writer);

        Assert.Equal(ModelFormat.Gguf, file.Format);
        Assert.Equal(3u, file.Version);
        Assert.Equal(32u, file.Alignment);
        Assert.Equal(0, file.DataStart % 32);
        Assert.Equal("stable-diffusion", file.Metadata["general.architecture"]);
        Assert.Equal("2", file.Metadata["general.quantization_version"]);
        Assert.Equal(5, file.Tensors.Count);

        var convInfo = file.Tensors[0];
        Assert.Equal("model.diffusion_model.input_blocks.0.0.weight", convInfo.Name);
        Assert.Equal(TensorDType.F16, convInfo.DType);
        Assert.Equal([320L, 4, 3, 3], convInfo.Shape); // torch order
        Assert.Equal(conv.Length, convInfo.ByteLength);
        var read = new byte[convInfo.ByteLength];
        file.ReadTensorData(convInfo, read);
        Assert.Equal(conv, read);

        var q8 = file.Tensors[2];
        Assert.Equal(TensorDType.Quantized, q8.DType);
        Assert.Equal("Q8_0", q8.TypeName);
        Assert.Equal(GgmlType.Q8_0, file.GetGgmlType(q8));
        Assert.Equal([320L, 320], q8.Shape);
        Assert.Equal(320L * 320, q8.ElementCount);
        Assert.Equal(320 / 32 * 34 * 320, q8.ByteLength);
        var q8Data = new byte[q8.ByteLength];
        file.ReadTensorData(q8, q8Data);
        Assert.Equal(GgufTestWriter.Pattern(q8.ByteLength, q8.Name.Length), q8Data);

        var q4k = file.Tensors[3];
        Assert.Equal("Q4_K", q4k.TypeName);
        Assert.Equal(1280 / 256 * 144 * 10240, q4k.ByteLength);
        Assert.Equal(TensorDType.BF16, file.Tensors[4].DType);
        Assert.Equal(file.SizeBytes, new FileInfo(file.Path).Length);
        Assert.All(file.Tensors, t => Assert.Equal(0, (t.DataOffset - file.DataStart) % 32));
    }

    [Theory]
    [InlineData(GgmlType.F32, 1, 4)]
    [InlineData(GgmlType.F16, 1, 2)]
    [InlineData(GgmlType.BF16, 1, 2)]
    [InlineData(GgmlType.F64, 1, 8)]
    [InlineData(GgmlType.I8, 1, 1)]
    [InlineData(GgmlType.I16, 1, 2)]
    [InlineData(GgmlType.I32, 1, 4)]
    [InlineData(GgmlType.I64, 1, 8)]
    [InlineData(GgmlType.Q4_0, 32, 18)]
    [InlineData(GgmlType.Q4_1, 32, 20)]
    [InlineData(GgmlType.Q5_0, 32, 22)]
    [InlineData(GgmlType.Q5_1, 32, 24)]
    [InlineData(GgmlType.Q8_0, 32, 34)]
    [InlineData(GgmlType.Q8_1, 32, 36)]
    [InlineData(GgmlType.Q2_K, 256, 84)]
    [InlineData(GgmlType.Q3_K, 256, 110)]
    [InlineData(GgmlType.Q4_K, 256, 144)]
    [InlineData(GgmlType.Q5_K, 256, 176)]
    [InlineData(GgmlType.Q6_K, 256, 210)]
    [InlineData(GgmlType.Q8_K, 256, 292)]
    [InlineData(GgmlType.IQ2_XXS, 256, 66)]
    [InlineData(GgmlType.IQ2_XS, 256, 74)]
    [InlineData(GgmlType.IQ3_XXS, 256, 98)]
    [InlineData(GgmlType.IQ1_S, 256, 50)]
    [InlineData(GgmlType.IQ4_NL, 32, 18)]
    [InlineData(GgmlType.IQ3_S, 256, 110)]
    [InlineData(GgmlType.IQ2_S, 256, 82)]
    [InlineData(GgmlType.IQ4_XS, 256, 136)]
    [InlineData(GgmlType.IQ1_M, 256, 56)]
    [InlineData(GgmlType.TQ1_0, 256, 54)]
    [InlineData(GgmlType.TQ2_0, 256, 66)]
    [InlineData(GgmlType.MXFP4, 32, 17)]
    [InlineData(GgmlType.NVFP4, 64, 36)]
    [InlineData(GgmlType.Q1_0, 128, 18)]
    public void TypeTableMatchesGgml(GgmlType type, int blockSize, int typeSize)
    {
        var traits = GgmlTypeTraits.Get(type);
        Assert.Equal(blockSize, traits.BlockSize);
        Assert.Equal(typeSize, traits.TypeSize);
        Assert.Equal(type.ToString(), traits.Name);
        Assert.Equal(blockSize > 1, traits.IsQuantized);

        using var dir = new TempDir();
        long[] shape = [3, 2 * blockSize];
        using var file = OpenBuilt(dir, new GgufTestWriter().Tensor("t", type, shape));
        var t = file.Tensors[0];
        Assert.Equal(3L * 2 * typeSize, t.ByteLength);
        Assert.Equal(type.ToString(), t.TypeName);
        Assert.Equal(shape, t.Shape);
        var data = new byte[t.ByteLength];
        file.ReadTensorData(t, data);
        Assert.Equal(GgufTestWriter.Pattern(t.ByteLength, 1), data);
    }

    [Fact]
    public void EveryTableEntryIsTested() => Assert.Equal(34, GgmlTypeTraits.All.Count);

    [Fact]
    public void EveryScalarValueType()
    {
        using var dir = new TempDir();
        var writer = new GgufTestWriter()
            .UInt8("u8", 255).Int8("i8", -128).UInt16("u16", 65535).Int16("i16", -32768)
            .UInt32("u32", uint.MaxValue).Int32("i32", int.MinValue).UInt64("u64", ulong.MaxValue).Int64("i64", long.MinValue)
            .Float32("f32", 0.1f).Float64("f64", 1e-300).Bool("yes", true).Bool("no", false)
            .String("s", "héllo\nworld").String("empty", "");
        using var file = OpenBuilt(dir, writer);
        Assert.Equal("255", file.Metadata["u8"]);
        Assert.Equal("-128", file.Metadata["i8"]);
        Assert.Equal("65535", file.Metadata["u16"]);
        Assert.Equal("-32768", file.Metadata["i16"]);
        Assert.Equal("4294967295", file.Metadata["u32"]);
        Assert.Equal("-2147483648", file.Metadata["i32"]);
        Assert.Equal("18446744073709551615", file.Metadata["u64"]);
        Assert.Equal("-9223372036854775808", file.Metadata["i64"]);
        Assert.Equal("0.1", file.Metadata["f32"]);
        Assert.Equal("1E-300", file.Metadata["f64"]);
        Assert.Equal("true", file.Metadata["yes"]);
        Assert.Equal("false", file.Metadata["no"]);
        Assert.Equal("héllo\nworld", file.Metadata["s"]);
        Assert.Equal("", file.Metadata["empty"]);
        Assert.Empty(file.Tensors);
    }

    [Fact]
    public void ArraysShortShownLongSummarisedNestedWalked()
    {
        using var dir = new TempDir();
        var vocab = Enumerable.Range(0, 49408).Select(i => $"tok{i}</w>").ToList();
        var writer = new GgufTestWriter()
            .Int32Array("small", 1, 2, -3)
            .StringArray("names", ["a", "quote\"d", "ü"])
            .StringArray("tokenizer.ggml.tokens", vocab)
            .Array("floats", GgufValueType.Float32, 1000, w => { for (int i = 0; i < 1000; i++) w.Write(i * 0.5f); })
            .Array("bools", GgufValueType.Bool, 2, w => { w.Write((byte)1); w.Write((byte)0); })
            .Array("nested", GgufValueType.Array, 2, w =>
            {
                GgufTestWriter.WriteArrayBody(w, GgufValueType.UInt8, 3, x => x.Write(new byte[] { 1, 2, 3 }));
                GgufTestWriter.WriteArrayBody(w, GgufValueType.String, 1, x => GgufTestWriter.WriteString(x, "deep"));
            })
            .Array("none", GgufValueType.UInt64, 0, _ => { })
            .String("after", "still aligned")
            .Tensor("w", GgmlType.F32, [2]);
        using var file = OpenBuilt(dir, writer);
        Assert.Equal("[1,2,-3]", file.Metadata["small"]);
        Assert.Equal("[\"a\",\"quote\\\"d\",\"ü\"]", file.Metadata["names"]);
        Assert.Equal("[array of 49408 string]", file.Metadata["tokenizer.ggml.tokens"]);
        Assert.Equal("[array of 1000 float32]", file.Metadata["floats"]);
        Assert.Equal("[true,false]", file.Metadata["bools"]);
        Assert.Equal("[array of 2 array]", file.Metadata["nested"]);
        Assert.Equal("[]", file.Metadata["none"]);
        Assert.Equal("still aligned", file.Metadata["after"]);
        Assert.Equal("w", Assert.Single(file.Tensors).Name);
    }

    [Fact]
    public void CustomAlignmentAndVersion2()
    {
        using var dir = new TempDir();
        var writer = new GgufTestWriter { Version = 2 }.SetAlignment(256)
            .Tensor("a", GgmlType.F32, [3])
            .Tensor("b", GgmlType.Q8_0, [64]);
        using var file = OpenBuilt(dir, writer);
        Assert.Equal(2u, file.Version);
        Assert.Equal(256u, file.Alignment);
        Assert.Equal("256", file.Metadata[GgufFile.AlignmentKey]);
        Assert.Equal(0, file.DataStart % 256);
        Assert.Equal(file.DataStart + 256, file.Tensors[1].DataOffset);
        var b = new byte[68];
        file.ReadTensorData(file.Tensors[1], b);
        Assert.Equal(GgufTestWriter.Pattern(68, 1), b);
    }

    [Fact]
    public void ScalarAndEmptyTensors()
    {
        using var dir = new TempDir();
        var writer = new GgufTestWriter()
            .Tensor("scalar", GgmlType.F32, [], BitConverter.GetBytes(2.5f))
            .Tensor("empty", GgmlType.F16, [0, 8], [])
            .Tensor("after", GgmlType.I32, [1], BitConverter.GetBytes(7));
        using var file = OpenBuilt(dir, writer);
        Assert.Empty(file.Tensors[0].Shape);
        var scalar = new byte[4];
        file.ReadTensorData(file.Tensors[0], scalar);
        Assert.Equal(2.5f, BitConverter.ToSingle(scalar));
        Assert.Equal(0, file.Tensors[1].ByteLength);
        file.ReadTensorData(file.Tensors[1], []);
        var after = new byte[4];
        file.ReadTensorData(file.Tensors[2], after);
        Assert.Equal(7, BitConverter.ToInt32(after));
    }

    private static void AssertInvalid(byte[] bytes, string expectedProblem)
    {
        using var dir = new TempDir();
        string path = dir.File("bad.gguf");
        File.WriteAllBytes(path, bytes);
        AssertInvalid(path, expectedProblem);
    }

    private static void AssertInvalid(string path, string expectedProblem)
    {
        var e = Assert.Throws<InvalidModelFileException>(() => GgufFile.Open(path).Dispose());
        Assert.Equal(path, e.FilePath);
        Assert.Contains(expectedProblem, e.Problem);
        Assert.DoesNotContain('\n', e.Message);
    }

    private static void AssertInvalid(GgufTestWriter writer, string expectedProblem) => AssertInvalid(writer.Build(), expectedProblem);

    [Fact]
    public void EmptyFile() => AssertInvalid([], "empty file");

    [Fact]
    public void MissingFile()
    {
        using var dir = new TempDir();
        AssertInvalid(dir.File("absent.gguf"), "cannot open");
    }

    [Fact]
    public void WrongMagic() => AssertInvalid("GGML\x03\0\0\0"u8.ToArray(), "not a GGUF file");

    [Fact]
    public void Version1IsRefusedClearly() => AssertInvalid(new GgufTestWriter { Version = 1 }, "GGUF version 1 (the 2023 pre-release layout) is not supported");

    [Fact]
    public void FutureVersion() => AssertInvalid(new GgufTestWriter { Version = 4 }, "unsupported GGUF version 4");

    [Fact]
    public void BigEndian() => AssertInvalid(new GgufTestWriter { Version = 0x03000000 }, "big-endian GGUF (version 3) is not supported");

    [Fact]
    public void TruncatedInTheHeader() => AssertInvalid(new GgufTestWriter().Build()[..10], "truncated");

    [Fact]
    public void TruncatedInAKeyValue()
    {
        var bytes = new GgufTestWriter().String("general.name", "a fairly long model name").Build();
        AssertInvalid(bytes[..^5], "'general.name' value length 24 cannot fit in the 19 bytes left in the file (truncated");
    }

    [Fact]
    public void TruncatedInTheData()
    {
        var bytes = new GgufTestWriter().Tensor("w", GgmlType.F32, [64]).Build();
        AssertInvalid(bytes[..^10], "tensor 'w': data [0, 256) runs past the end of the data (246 bytes");
    }

    [Fact]
    public void HugeTensorCount() =>
        AssertInvalid(new GgufTestWriter { TensorCountOverride = ulong.MaxValue / 2 }, "tensor count 9223372036854775807 cannot fit");

    [Fact]
    public void HugeKeyValueCount() => AssertInvalid(new GgufTestWriter { KeyValueCountOverride = 1_000_000 }, "key/value count 1000000 cannot fit");

    [Fact]
    public void HugeStringLength() =>
        AssertInvalid(new GgufTestWriter().Raw("k", GgufValueType.String, w => { w.Write(ulong.MaxValue - 3); w.Write(0L); }),
            "'k' value length 18446744073709551612 cannot fit");

    [Fact]
    public void HugeKeyLength()
    {
        var bytes = new GgufTestWriter().String("k", "v").Build();
        BitConverter.TryWriteBytes(bytes.AsSpan(24), 1L << 40);
        AssertInvalid(bytes, "key 0 length 1099511627776 cannot fit");
    }

    [Fact]
    public void HugeArrayLength() =>
        AssertInvalid(new GgufTestWriter().Array("a", GgufValueType.UInt64, long.MaxValue, w => w.Write(0L)), "'a' array length 9223372036854775807 cannot fit");

    [Fact]
    public void UnknownValueType() => AssertInvalid(new GgufTestWriter().Raw("k", (GgufValueType)13, w => w.Write(0)), "key 'k' has unknown value type 13");

    [Fact]
    public void UnknownArrayElementType() =>
        AssertInvalid(new GgufTestWriter().Array("a", (GgufValueType)99, 1, w => w.Write(0)), "'a': array of unknown value type 99");

    [Fact]
    public void BoolOutOfRange() => AssertInvalid(new GgufTestWriter().Raw("b", GgufValueType.Bool, w => w.Write((byte)2)), "'b': bool value 2 is neither 0 nor 1");

    [Fact]
    public void DeeplyNestedArrays()
    {
        void Nest(BinaryWriter w, int depth)
        {
            if (depth == 0) GgufTestWriter.WriteArrayBody(w, GgufValueType.UInt8, 0, _ => { });
            else GgufTestWriter.WriteArrayBody(w, GgufValueType.Array, 1, x => Nest(x, depth - 1));
        }
        AssertInvalid(new GgufTestWriter().Raw("deep", GgufValueType.Array, w => Nest(w, 20)), "arrays nested more than 8 deep");
    }

    [Fact]
    public void InvalidUtf8Key()
    {
        var bytes = new GgufTestWriter().String("kX", "v").Build();
        bytes[33] = 0xFF;
        AssertInvalid(bytes, "key 0 at byte 32 is not valid UTF-8");
    }

    [Fact]
    public void DuplicateKey() => AssertInvalid(new GgufTestWriter().String("k", "1").String("k", "2"), "key 'k' appears twice");

    [Fact]
    public void AlignmentNotAPowerOfTwo() => AssertInvalid(new GgufTestWriter().UInt32(GgufFile.AlignmentKey, 48), "general.alignment 48 is not a power of two");

    [Fact]
    public void AlignmentOfTheWrongType() => AssertInvalid(new GgufTestWriter().UInt64(GgufFile.AlignmentKey, 32), "general.alignment must be a uint32, not uint64");

    [Fact]
    public void UnknownGgmlType() => AssertInvalid(new GgufTestWriter().Tensor("t", 99u, [4], new byte[16]), "tensor 't': unknown ggml type 99");

    [Fact]
    public void RemovedGgmlType() => AssertInvalid(new GgufTestWriter().Tensor("t", 4u, [32], new byte[20]), "ggml type 4 (Q4_2) was removed");

    [Fact]
    public void PartialQuantBlock() =>
        AssertInvalid(new GgufTestWriter().Tensor("t", (uint)GgmlType.Q4_K, [2, 100], new byte[288]), "row of 100 elements is not a whole number of Q4_K blocks (256 elements)");

    [Fact]
    public void TooManyDimensions() =>
        AssertInvalid(new GgufTestWriter().Tensor("t", GgmlType.F32, [1, 1, 1, 1, 1]), "tensor 't' has 5 dimensions (ggml allows at most 4)");

    [Fact]
    public void DimensionOutOfRange() =>
        AssertInvalid(new GgufTestWriter().Tensor("t", (uint)GgmlType.F32, [-1], new byte[4]), "dimension 0 is 18446744073709551615, out of range");

    [Fact]
    public void OverflowingShape() =>
        AssertInvalid(new GgufTestWriter().Tensor("t", (uint)GgmlType.F32, [1L << 31, 1L << 31, 1L << 31], new byte[4]), "overflows");

    [Fact]
    public void MisalignedOffset() =>
        AssertInvalid(new GgufTestWriter().Tensor("a", GgmlType.F32, [4]).Tensor("b", GgmlType.F32, [4], offset: 16), "tensor 'b': offset 16 is not a multiple of the alignment 32");

    [Fact]
    public void OffsetPastTheEnd()
    {
        var bytes = new GgufTestWriter().Tensor("a", GgmlType.F32, [4]).Build();
        // header 24 bytes, name 8 + 1, n_dims 4, one dim 8, type 4: the offset field starts at byte 49
        Assert.Equal(0L, BitConverter.ToInt64(bytes, 49));
        BitConverter.TryWriteBytes(bytes.AsSpan(49), 1L << 40);
        AssertInvalid(bytes, "tensor 'a': data [1099511627776, 1099511627792) runs past the end of the data (32 bytes");
    }

    [Fact]
    public void OverlappingTensors() =>
        AssertInvalid(new GgufTestWriter().Tensor("a", GgmlType.F32, [16]).Tensor("b", GgmlType.F32, [16], offset: 32), "tensor 'b' overlaps the data of 'a'");

    [Fact]
    public void DuplicateTensorName() =>
        AssertInvalid(new GgufTestWriter().Tensor("a", GgmlType.F32, [4]).Tensor("a", GgmlType.F32, [4]), "tensor 'a' appears twice");

    [Fact]
    public void HugeTensorNameLength()
    {
        var writer = new GgufTestWriter().Tensor(new string('n', 5000), GgmlType.F32, [1]);
        AssertInvalid(writer, "tensor 0 name is 5000 bytes long, over the 4096-byte limit");
    }

    [Fact]
    public void ReadTensorDataChecksItsArguments()
    {
        using var dir = new TempDir();
        using var file = OpenBuilt(dir, new GgufTestWriter().Tensor("a", GgmlType.F32, [4]));
        Assert.Throws<ArgumentException>(() => file.ReadTensorData(file.Tensors[0], new byte[15]));
        Assert.Throws<ArgumentException>(() => file.ReadTensorData(file.Tensors[0] with { DataOffset = file.SizeBytes }, new byte[16]));
        Assert.Throws<ArgumentException>(() => file.GetGgmlType(new TensorInfo("other", TensorDType.F32, [1])));
    }

    [Fact]
    public void FileTruncatedAfterOpening()
    {
        using var dir = new TempDir();
        string path = new GgufTestWriter().Tensor("a", GgmlType.F32, [64]).Write(dir);
        using var file = GgufFile.Open(path);
        using (var s = new FileStream(path, FileMode.Open, FileAccess.Write)) s.SetLength(file.DataStart + 10);
        var e = Assert.Throws<InvalidModelFileException>(() => file.ReadTensorData(file.Tensors[0], new byte[256]));
        Assert.Contains("file ends inside tensor 'a'", e.Problem);
    }
}
