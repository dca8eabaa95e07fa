using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Pickle;
using SharpDiffusion.Formats.Torch;
using SharpDiffusion.Tests.Fixtures.Torch;
using static SharpDiffusion.Tests.Formats.Torch.TorchTestHelpers;

namespace SharpDiffusion.Tests.Formats.Torch;

public class TorchFileTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SdCheckpointUnwrapsStateDictWithEveryDType(bool zip)
    {
        using var dir = new TempDir();
        string path = dir.File("model.ckpt");
        TorchFixtures.SdCheckpoint().Write(path, zip);
        using var f = TorchFile.Open(path);

        Assert.Equal(zip ? ModelFormat.TorchZip : ModelFormat.TorchLegacy, f.Format);
        Assert.Equal(new FileInfo(path).Length, f.SizeBytes);
        Assert.Equal(
            ["model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.input_blocks.0.0.bias", "first_stage_model.quant_conv.weight",
             "cond_stage_model.transformer.text_model.embeddings.position_ids", "betas"],
            f.Tensors.Select(t => t.Name));
        Assert.Equal([TensorDType.F16, TensorDType.F32, TensorDType.BF16, TensorDType.I64, TensorDType.F64], f.Tensors.Select(t => t.DType));
        Assert.Equal(["HalfStorage", "FloatStorage", "BFloat16Storage", "LongStorage", "DoubleStorage"], f.Tensors.Select(t => t.TypeName));
        Assert.Equal([4L, 3], f.Tensors[0].Shape);
        Assert.All(f.Tensors, t => Assert.Null(t.Strides));
        Assert.Equal("0", f.Tensors[0].StorageKey);

        Assert.Equal(TorchFixtures.Ramp(12, -3, 0.5f), ReadFloats(f, "model.diffusion_model.input_blocks.0.0.weight"));
        Assert.Equal([0.25f, 0.5f, 0.75f, 1f], ReadFloats(f, "model.diffusion_model.input_blocks.0.0.bias"));
        Assert.Equal([1.5f, -2f, 0.125f, 3f, 256f, -0.5f], ReadFloats(f, "first_stage_model.quant_conv.weight"));
        Assert.Equal([49406L, 320, 49407], ReadLongs(f, "cond_stage_model.transformer.text_model.embeddings.position_ids"));
        Assert.Equal([(float)0.00085, (float)0.012], ReadFloats(f, "betas"));

        Assert.Equal("470000", f.Metadata["global_step"]);
        Assert.Equal("6", f.Metadata["epoch"]);
        Assert.Equal("1.4.2", f.Metadata["pytorch-lightning_version"]);
        Assert.DoesNotContain(f.Metadata.Keys, k => k.StartsWith("state_dict", StringComparison.Ordinal) || k.Contains("_metadata"));
        var root = Assert.IsType<PickleDict>(f.Root);
        Assert.True(root.TryGetValue("state_dict", out var sd));
        Assert.Equal("collections.OrderedDict", Assert.IsType<PickleDict>(sd).TypeName);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void A1111EmbeddingFlattensToParamTensorAndMetadata(bool zip, bool numpyStep)
    {
        using var dir = new TempDir();
        string path = dir.File("emb.pt");
        TorchFixtures.Embedding(numpyStep).Write(path, zip);
        using var f = TorchFile.Open(path);

        var t = Assert.Single(f.Tensors);
        Assert.Equal("string_to_param.*", t.Name);
        Assert.Equal([2L, 8], t.Shape);
        Assert.Equal(TorchFixtures.Ramp(16, -1, 0.125f), ReadFloats(f, "string_to_param.*"));
        Assert.Equal("265", f.Metadata["string_to_token.*"]);
        Assert.Equal("my-style", f.Metadata["name"]);
        Assert.Equal("1500", f.Metadata["step"]);
        Assert.Equal("7460a6fa", f.Metadata["sd_checkpoint"]);
        Assert.Equal("v1-5-pruned-emaonly", f.Metadata["sd_checkpoint_name"]);
        Assert.Equal(5, f.Metadata.Count);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void A1111HypernetworkNamesUseSizeAndPairIndex(bool zip, bool floatLayers)
    {
        using var dir = new TempDir();
        string path = dir.File("hn.pt");
        TorchFixtures.Hypernetwork(floatLayers).Write(path, zip);
        using var f = TorchFile.Open(path);

        Assert.Equal(16, f.Tensors.Count);
        Assert.Equal("768.0.linear.0.weight", f.Tensors[0].Name);
        Assert.Equal([6L, 3], f.Tensors[0].Shape);
        Assert.Contains(f.Tensors, t => t.Name == "768.1.linear.2.bias" && t.Shape.SequenceEqual([3L]));
        Assert.Contains(f.Tensors, t => t.Name == "1024.0.linear.2.weight" && t.Shape.SequenceEqual([4L, 8]));
        Assert.Equal(floatLayers ? "[1.0,2.0,1.0]" : "[1,2,1]", f.Metadata["layer_structure"]);
        Assert.Equal("relu", f.Metadata["activation_func"]);
        Assert.Equal("false", f.Metadata["is_layer_norm"]);
        Assert.Equal("false", f.Metadata["use_dropout"]);
        Assert.Equal("null", f.Metadata["sd_checkpoint"]);
        Assert.Equal("0", f.Metadata["step"]);
        Assert.Equal("anime", f.Metadata["name"]);
        Assert.Equal("[0,0.3,0]", f.Metadata["dropout_structure"]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ViewsMaterialiseRowMajor(bool zip)
    {
        using var dir = new TempDir();
        string path = dir.File("views.pt");
        TorchFixtures.Views().Write(path, zip);
        using var f = TorchFile.Open(path);
        var by = f.Tensors.ToDictionary(t => t.Name);

        Assert.Equal(TorchFixtures.Ramp(24), ReadFloats(f, "whole"));
        Assert.Equal([5f, 6, 7, 8, 9, 10], ReadFloats(f, "offset"));
        Assert.Null(by["offset"].Strides);
        Assert.Equal(20, by["offset"].DataOffset);

        Assert.Equal([1L, 6], by["transposed"].Strides!);
        var transposed = ReadFloats(f, "transposed");
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 4; c++)
                Assert.Equal(c * 6 + r, transposed[r * 4 + c]);

        Assert.Equal([0L, 1], by["expanded"].Strides!);
        Assert.Equal([2f, 3, 4, 5, 2, 3, 4, 5, 2, 3, 4, 5], ReadFloats(f, "expanded"));
        Assert.Equal([1f, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23], ReadFloats(f, "every_other"));
        Assert.Equal([23f], ReadFloats(f, "scalar"));
        Assert.Empty(by["scalar"].Shape);
        Assert.Equal(0, by["empty"].ByteLength);
        f.ReadTensorData(by["empty"], Span<byte>.Empty);
    }

    [Theory]
    [InlineData("archive", false, false)]
    [InlineData("my_model", false, false)]
    [InlineData("archive", true, false)]
    [InlineData("archive", false, true)]
    [InlineData("x", true, true)]
    public void ZipVariantsRead(string prefix, bool deflate, bool zip64)
    {
        using var dir = new TempDir();
        string path = dir.File("v.pt");
        var fx = TorchFixtures.Views();
        TorchFixtureWriter.WriteZip(path, fx.Root, fx.Storages, new() { Prefix = prefix, Deflate = deflate, Zip64 = zip64 });
        using var f = TorchFile.Open(path);
        Assert.Equal([1f, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23], ReadFloats(f, "every_other"));
        Assert.Equal([5f, 6, 7, 8, 9, 10], ReadFloats(f, "offset"));
    }

    [Fact]
    public void StoredZipDataIsAtTheRecordedOffset()
    {
        using var dir = new TempDir();
        string path = dir.File("m.ckpt");
        TorchFixtures.SdCheckpoint().Write(path, zip: true);
        using var f = TorchFile.Open(path);
        // Data offsets are relative to the storage; the storage itself is aligned to 64 bytes like torch's writer.
        Assert.All(f.Tensors, t => Assert.Equal(0, t.DataOffset));
    }

    [Fact]
    public void RootTensorAndListRootAreNamedByPosition()
    {
        using var dir = new TempDir();
        string path = dir.File("l.pt");
        var storages = new Dictionary<string, FixtureStorage> { ["0"] = FixtureStorage.F32(1, 2, 3) };
        TorchFixtureWriter.WriteZip(path, new List<object?> { new FixtureTensor("0", 0, [3], [1]), "x", new FixtureTensor("0", 1, [2], [1]) }, storages);
        using var f = TorchFile.Open(path);
        Assert.Equal(["0", "2"], f.Tensors.Select(t => t.Name));
        Assert.Equal([2f, 3], ReadFloats(f, "2"));
        Assert.Equal("x", f.Metadata["1"]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Float8TensorsFromRebuildTensorV3(bool zip)
    {
        using var dir = new TempDir();
        string path = dir.File("f8.pt");
        // e4m3fn: 0x38 = 1.0, 0x40 = 2.0, 0xB8 = -1.0, 0x30 = 0.5; a view skipping the first byte.
        var storages = new Dictionary<string, FixtureStorage> { ["0"] = FixtureStorage.Untyped(0x00, 0x38, 0x40, 0xB8, 0x30) };
        var root = new FixtureDict(ordered: true) { { "w", new FixtureTensor("0", 1, [2, 2], [2, 1]) { TorchDType = "float8_e4m3fn" } } };
        new TorchFixtures.Fixture(root, storages).Write(path, zip);
        using var f = TorchFile.Open(path);
        var t = Assert.Single(f.Tensors);
        Assert.Equal(TensorDType.F8_E4M3, t.DType);
        Assert.Equal("UntypedStorage(float8_e4m3fn)", t.TypeName);
        Assert.Equal(1, t.DataOffset);
        var bytes = new byte[4];
        f.ReadTensorData(t, bytes);
        Assert.Equal([1f, 2f, -1f, 0.5f], bytes.Select(Float8.E4M3FnToSingle));
    }

    [Fact]
    public void LegacyStorageViewsAddTheirOffset()
    {
        using var dir = new TempDir();
        string path = dir.File("view.pt");
        var storages = new Dictionary<string, FixtureStorage> { ["root"] = FixtureStorage.F32(TorchFixtures.Ramp(10)) };
        var root = new FixtureDict
        {
            // A view of elements 4..9 of the root storage; the tensor starts 1 element into the view.
            { "v", new FixtureTensor("root", 1, [2, 2], [2, 1]) { LegacyView = ("view1", 4, 6) } },
            { "w", new FixtureTensor("root", 0, [10], [1]) },
        };
        TorchFixtureWriter.WriteLegacy(path, root, storages);
        using var f = TorchFile.Open(path);
        Assert.Equal([5f, 6, 7, 8], ReadFloats(f, "v"));
        Assert.Equal(20, f.Tensors[0].DataOffset);
        Assert.Equal(TorchFixtures.Ramp(10), ReadFloats(f, "w"));

        var tooLong = new FixtureDict { { "v", new FixtureTensor("root", 3, [2, 2], [2, 1]) { LegacyView = ("view1", 4, 6) } } };
        TorchFixtureWriter.WriteLegacy(path, tooLong, storages);
        Assert.Contains("storage too short", Assert.Throws<InvalidModelFileException>(() => TorchFile.Open(path)).Problem);
    }
}
