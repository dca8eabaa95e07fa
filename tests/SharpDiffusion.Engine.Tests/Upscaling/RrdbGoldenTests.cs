using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Upscaling;

/// <summary>
/// ESRGAN / Real-ESRGAN RRDBNet against tests/data/golden/ext/rrdb_golden (BasicSR's and ESRGAN's own networks,
/// A1111's tiled upscale): README §3 and §5 give the tolerances (1e-5 on raw outputs, 8-bit images ≤ 1 level on ≤ 1%).
/// </summary>
public class RrdbGoldenTests
{
    private const string GoldenFile = "ext/rrdb_golden.safetensors";

    private static string Model(string name) => TestPaths.GoldenFile("ext/" + name);

    [Theory]
    [InlineData("tiny_rrdb_x4.pth", RrdbKeyLayout.BasicSR)]
    [InlineData("tiny_rrdb_x4_params_ema.pth", RrdbKeyLayout.BasicSR)]
    [InlineData("tiny_rrdb_x4_old.pth", RrdbKeyLayout.EsrganOriginal)]
    public void X4FilesInEveryLayoutReproduceBasicSR(string file, RrdbKeyLayout layout)
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var model = UpscalerModel.Load(Model(file));
        Assert.Equal(layout, model.Layout);
        Assert.Equal(new RrdbNetConfig(3, 3, 16, 8, 2, 2, 1), model.Config);
        Assert.Equal(4, model.Scale);
        using var scope = NewDisposeScope();
        var output = model.Forward(golden.Get("input.x"));
        TensorAssert.MaxAbs(golden.Get("x4.out"), output, 1e-5, file);
    }

    [Fact]
    public void X2PixelUnshuffleModelReproducesBasicSR()
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var model = UpscalerModel.Load(Model("tiny_rrdb_x2.pth"));
        Assert.Equal(new RrdbNetConfig(3, 3, 16, 8, 2, 2, 2), model.Config);
        Assert.Equal(2, model.Scale);
        using var scope = NewDisposeScope();
        var input = golden.Get("input.x");
        TensorAssert.MaxAbs(golden.Get("x2.pixel_unshuffle"), RrdbNet.PixelUnshuffle(input, 2), 0, "pixel_unshuffle (a permutation: exact)");
        TensorAssert.MaxAbs(golden.Get("x2.out"), model.Forward(input), 1e-5, "x2");
    }

    /// <summary>bf16 weights and activations (the narrow conv_last / growth convs run in float32): close, not exact.</summary>
    [Fact]
    public void Bf16StaysCloseToTheFloat32Golden()
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var model = UpscalerModel.Load(Model("tiny_rrdb_x4.pth"), ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, model.DType);
        using var scope = NewDisposeScope();
        var output = model.Forward(golden.Get("input.x"));
        Assert.Equal(ScalarType.Float32, output.dtype);
        // bf16 keeps 8 bits of mantissa: ~0.4% per rounding; the outputs are ~0.5, so 2e-2 bounds a few roundings.
        TensorAssert.MaxAbs(golden.Get("x4.out"), output, 2e-2, "bf16 x4");
    }

    [Fact]
    public void TiledUpscaleMatchesA1111GridTilesAndBlending()
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var model = UpscalerModel.Load(Model("tiny_rrdb_x4.pth"));
        var input = ToImage(golden.Get("tiled.input_u8"));
        var (rows, cols) = TiledUpscaler.SplitGrid(input.Width, input.Height, 16, 16, 4);
        Assert.Equal(new[] { 0, 12, 24 }, rows);
        Assert.Equal(new[] { 0, 10, 20 }, cols);

        using var scope = NewDisposeScope();
        var goldenTiles = golden.Get("tiled.tiles_u8");
        int index = 0;
        foreach (int y in rows)
        {
            foreach (int x in cols)
            {
                var tile = TiledUpscaler.UpscalePatch(model, input.Crop(x, y, 16, 16));
                AssertLevels(goldenTiles[index].unsqueeze(0), tile, $"tile {index} at ({x}, {y})");
                index++;
            }
        }
        AssertLevels(golden.Get("tiled.output_u8"), TiledUpscaler.Upscale(model, input, 16, 4), "tiled output");
        AssertLevels(golden.Get("tiled.untiled_u8"), TiledUpscaler.Upscale(model, input, 0, 0), "untiled output");
    }

    [Fact]
    public void NativeScaleUpscaleIsOneTiledPass()
    {
        using var golden = GoldenTensors.Open(GoldenFile);
        using var model = UpscalerModel.Load(Model("tiny_rrdb_x4_old.pth"));
        using var scope = NewDisposeScope();
        var input = ToImage(golden.Get("tiled.input_u8"));
        // 36x40 x4 = 144x160, already multiples of 8: no Lanczos step.
        AssertLevels(golden.Get("tiled.output_u8"), ModelUpscale.Upscale(model, input, 4, 16, 4), "upscale at scale 4");
        Assert.Equal((72, 80), ModelUpscale.TargetSize(36, 40, 2));
        Assert.Equal((2048, 2048), ModelUpscale.TargetSize(513, 513, 4));
    }

    /// <summary>The ESRGAN 2019 names (xinntao's rename: RRDB_trunk, trunk_conv, upconvN, HRconv), written from the BasicSR file.</summary>
    [Fact]
    public void Esrgan2019NamesLoadTheSameNetwork()
    {
        using var dir = new TempDir();
        var path = dir.File("esrgan2019.safetensors");
        using (var source = ModelFileReader.Open(Model("tiny_rrdb_x4.pth")))
        {
            static string Rename(string key) => System.Text.RegularExpressions.Regex.Replace(key, @"^body\.(\d+)\.rdb(\d)\.", "RRDB_trunk.$1.RDB$2.")
                .Replace("conv_body.", "trunk_conv.").Replace("conv_up", "upconv").Replace("conv_hr.", "HRconv.");
            SafetensorsWriter.Write(path, source.Tensors.Select(t => TensorToWrite.FromModelFile(source, t, Rename(t.Name))));
        }
        using var golden = GoldenTensors.Open(GoldenFile);
        using var model = UpscalerModel.Load(path);
        Assert.Equal(RrdbKeyLayout.Esrgan2019, model.Layout);
        using var scope = NewDisposeScope();
        TensorAssert.MaxAbs(golden.Get("x4.out"), model.Forward(golden.Get("input.x")), 1e-5, "ESRGAN 2019 names");
    }

    [Fact]
    public void AMissingTensorIsNamedInOneLine()
    {
        using var dir = new TempDir();
        var path = dir.File("incomplete.safetensors");
        using (var source = ModelFileReader.Open(Model("tiny_rrdb_x4.pth")))
            SafetensorsWriter.Write(path, source.Tensors.Where(t => t.Name != "conv_hr.bias").Select(t => TensorToWrite.FromModelFile(source, t)));
        var e = Assert.Throws<InvalidModelFileException>(() => UpscalerModel.Load(path));
        Assert.Equal($"{path}: weights do not fit RRDBNet x4: 2 blocks, 16 features, growth 8: 1 missing: conv_hr.bias", e.Message);
    }

    [Fact]
    public void FilesThatAreNotRrdbNetsAreRefusedWithTheirName()
    {
        foreach (var path in new[] { Model("tiny_controlnet_sd1.pth"), TestPaths.GoldenFile("tiny_sd1.safetensors") })
        {
            var e = Assert.Throws<InvalidModelFileException>(() => UpscalerModel.Load(path));
            Assert.StartsWith(path + ": not an ESRGAN/Real-ESRGAN RRDBNet upscaler", e.Message);
        }
    }

    [Fact]
    public void TilesNoLargerThanTheOverlapAreRefused()
    {
        Assert.Throws<ArgumentException>(() => TiledUpscaler.ValidateTiling(8, 8));
        Assert.Throws<ArgumentException>(() => TiledUpscaler.ValidateTiling(-1, 0));
        TiledUpscaler.ValidateTiling(0, 8);
        TiledUpscaler.ValidateTiling(9, 8);
    }

    /// <summary>[1, 3, H, W] 0..255 floats to an RGB image.</summary>
    internal static RgbImage ToImage(Tensor nchw)
    {
        int h = (int)nchw.shape[2], w = (int)nchw.shape[3];
        using var hwc = nchw[0].permute(1, 2, 0).contiguous().to(ScalarType.Byte);
        return new RgbImage(w, h, hwc.data<byte>().ToArray());
    }

    /// <summary>README §5: 8-bit images within 1 level on at most 1% of the values.</summary>
    internal static void AssertLevels(Tensor expected, RgbImage actual, string what)
    {
        Assert.Equal(new long[] { 1, 3, actual.Height, actual.Width }, expected.shape);
        using var hwc = expected[0].permute(1, 2, 0).contiguous();
        var reference = hwc.data<float>().ToArray();
        int off = 0, worst = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            int d = Math.Abs((int)reference[i] - actual.Pixels[i]);
            if (d > 0) off++;
            worst = Math.Max(worst, d);
        }
        Assert.True(worst <= 1 && off <= reference.Length / 100, $"{what}: {off} of {reference.Length} values differ, worst by {worst} levels");
    }
}
