using System.IO.Compression;
using System.Text.Json;
using SharpDiffusion.Engine.ControlNet;
using SharpDiffusion.Engine.Upscaling;

namespace SharpDiffusion.Engine.Tests.ControlNet;

/// <summary>
/// sd-webui-controlnet's control-map resize and canny preprocessor against the extension's own functions run by the
/// real OpenCV 4.6 (no IPP) and numpy (tests/data/controlnet_resize/controlnet_resize_reference.json, made by
/// make_reference.py beside it): the cv2.resize calls, detectmap_proc in its three modes, the binary path's steps and
/// canny at 512 — bit for bit.
/// </summary>
public class ControlMapResizeReferenceTests
{
    private static readonly Lazy<JsonElement> Reference = new(() => JsonDocument.Parse(File.ReadAllText(
        TestPaths.Require(Path.Combine(TestPaths.Data, "controlnet_resize", "controlnet_resize_reference.json")))).RootElement);

    /// <summary>A stored uint8 array: its HWC shape and bytes (zlib, base64).</summary>
    private static (int[] Shape, byte[] Bytes) Stored(string name)
    {
        var entry = Reference.Value.GetProperty("arrays").GetProperty(name);
        var shape = entry.GetProperty("shape").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        using var input = new MemoryStream(Convert.FromBase64String(entry.GetProperty("zlib_base64").GetString()!));
        using var zlib = new ZLibStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        zlib.CopyTo(output);
        var bytes = output.ToArray();
        Assert.Equal(shape.Aggregate(1, (a, b) => a * b), bytes.Length);
        return (shape, bytes);
    }

    private static RgbImage Image(string name)
    {
        var (shape, bytes) = Stored(name);
        Assert.Equal(3, shape[2]);
        return new RgbImage(shape[1], shape[0], bytes);
    }

    private static byte[] Gray(string name)
    {
        var (shape, bytes) = Stored(name);
        Assert.Equal(1, shape[2]);
        return bytes;
    }

    private static JsonElement Case(string section, int index) => Reference.Value.GetProperty(section)[index];

    private static IEnumerable<object[]> Indices(string section) =>
        Enumerable.Range(0, Reference.Value.GetProperty(section).GetArrayLength()).Select(i => new object[] { i });

    public static IEnumerable<object[]> ResizeCases => Indices("resize");
    public static IEnumerable<object[]> DetectmapCases => Indices("detectmap");
    public static IEnumerable<object[]> BinaryStepCases => Indices("binary_steps");
    public static IEnumerable<object[]> CannyCases => Indices("canny");
    public static IEnumerable<object[]> MorphologyCases => Indices("morphology");
    public static IEnumerable<object[]> OtsuCases => Indices("otsu");

    /// <summary>Equal bytes, or a message with the count and the first differences (not a 100 KB dump).</summary>
    private static void AssertSameBytes(byte[] expected, byte[] actual, int width, int channels, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var differences = Enumerable.Range(0, expected.Length).Where(i => expected[i] != actual[i]).ToList();
        Assert.True(differences.Count == 0, $"{what}: {differences.Count} of {expected.Length} values differ, first: " + string.Join("; ",
            differences.Take(6).Select(i => $"(x {i / channels % width}, y {i / channels / width}, c {i % channels}) expected {expected[i]} got {actual[i]}")));
    }

    [Fact]
    public void TheReferenceCoversEveryInterpolationModeAndMapKind()
    {
        var root = Reference.Value;
        Assert.Equal("4.6.0", root.GetProperty("opencv").GetString());
        var interpolations = root.GetProperty("resize").EnumerateArray().Select(c => c.GetProperty("interpolation").GetString()).ToHashSet();
        Assert.Equal(new HashSet<string?> { "nearest", "area", "cubic" }, interpolations);
        var detect = root.GetProperty("detectmap").EnumerateArray().ToList();
        Assert.Equal(new HashSet<string?> { "Just Resize", "Crop and Resize", "Resize and Fill" }, detect.Select(c => c.GetProperty("mode").GetString()).ToHashSet());
        var colours = detect.Select(c => c.GetProperty("colours").GetInt32()).ToList();
        Assert.Contains(colours, n => n >= 200);           // photo-like: area or cubic
        Assert.Contains(colours, n => n is > 2 and < 200); // segmentation: nearest
        Assert.Contains(colours, n => n == 2);             // binary maps
        Assert.Equal(3, root.GetProperty("canny").GetArrayLength());
        Assert.Equal(2, root.GetProperty("binary_steps").GetArrayLength());
        Assert.Equal(new HashSet<string?> { "erode", "dilate", "hitmiss" }, root.GetProperty("morphology").EnumerateArray().Select(c => c.GetProperty("op").GetString()).ToHashSet());
    }

    [Theory]
    [MemberData(nameof(ResizeCases))]
    public void CvResizeMatchesOpenCv(int index)
    {
        var c = Case("resize", index);
        var input = Image(c.GetProperty("input").GetString()!);
        int w = c.GetProperty("width").GetInt32(), h = c.GetProperty("height").GetInt32();
        var interpolation = c.GetProperty("interpolation").GetString() switch
        {
            "nearest" => OpenCvInterpolation.Nearest,
            "area" => OpenCvInterpolation.Area,
            "cubic" => OpenCvInterpolation.Cubic,
            var other => throw new InvalidDataException($"unknown interpolation {other}"),
        };
        var actual = OpenCvResize.Resize(input.Pixels, input.Width, input.Height, 3, w, h, interpolation);
        AssertSameBytes(Image(c.GetProperty("expected").GetString()!).Pixels, actual, w, 3, c.GetProperty("name").GetString()!);
    }

    [Theory]
    [MemberData(nameof(DetectmapCases))]
    public void DetectmapProcMatchesTheExtension(int index)
    {
        var c = Case("detectmap", index);
        var input = Image(c.GetProperty("input").GetString()!);
        int w = c.GetProperty("width").GetInt32(), h = c.GetProperty("height").GetInt32();
        var mode = ControlMapResize.Parse(c.GetProperty("mode").GetString()!);
        var expected = Image(c.GetProperty("expected").GetString()!);
        var actual = ControlMapResize.Apply(input, w, h, mode);
        Assert.Equal((w, h), (actual.Width, actual.Height));
        Assert.Equal(c.GetProperty("mode").GetString(), ControlMapResize.InfotextName(mode));
        AssertSameBytes(expected.Pixels, actual.Pixels, w, 3, c.GetProperty("name").GetString()!);
    }

    [Theory]
    [MemberData(nameof(BinaryStepCases))]
    public void NmsOtsuAndThinningMatchTheExtension(int index)
    {
        var c = Case("binary_steps", index);
        int w = c.GetProperty("width").GetInt32(), h = c.GetProperty("height").GetInt32();
        var mean = Gray(c.GetProperty("mean").GetString()!);

        // The mean of the resized three channels, as high_quality_resize takes it.
        var source = Image(c.GetProperty("source").GetString()!);
        var interpolation = (long)w * h > (long)source.Width * source.Height ? OpenCvInterpolation.Cubic : OpenCvInterpolation.Area;
        var resized = OpenCvResize.Resize(source.Pixels, source.Width, source.Height, 3, w, h, interpolation);
        AssertSameBytes(mean, Enumerable.Range(0, w * h).Select(i => (byte)((resized[i * 3] + resized[i * 3 + 1] + resized[i * 3 + 2]) / 3)).ToArray(), w, 1, "channel mean");

        var nms = ControlMapResize.NakeNms(mean, w, h);
        AssertSameBytes(Gray(c.GetProperty("nms").GetString()!), nms, w, 1, "nake_nms");
        Assert.Equal(c.GetProperty("otsu_threshold").GetInt32(), OpenCvMorphology.OtsuThreshold(nms));
        var otsu = OpenCvMorphology.OtsuBinary(nms);
        AssertSameBytes(Gray(c.GetProperty("otsu").GetString()!), otsu, w, 1, "Otsu");
        var thinned = ControlMapResize.LvminThin(otsu, w, h, c.GetProperty("prunings").GetBoolean());
        AssertSameBytes(Gray(c.GetProperty("thinned").GetString()!), thinned, w, 1, "lvmin_thin");
        Assert.NotEqual(otsu, thinned); // the thinning had something to do
    }

    [Theory]
    [MemberData(nameof(CannyCases))]
    public void CannyAt512MatchesTheExtension(int index)
    {
        var c = Case("canny", index);
        var input = Image(c.GetProperty("input").GetString()!);
        var expected = Gray(c.GetProperty("expected").GetString()!);
        var (shape, _) = Stored(c.GetProperty("expected").GetString()!);
        var map = ControlPreprocessors.CannyAtResolution(input, c.GetProperty("resolution").GetInt32(), c.GetProperty("low").GetInt32(), c.GetProperty("high").GetInt32());
        Assert.Equal((shape[1], shape[0]), (map.Width, map.Height));
        Assert.Equal(512, Math.Min(map.Width, map.Height));
        for (int ch = 0; ch < 3; ch++)
            AssertSameBytes(expected, Enumerable.Range(0, map.Width * map.Height).Select(i => map.Pixels[i * 3 + ch]).ToArray(), map.Width, 1, $"{c.GetProperty("name").GetString()} channel {ch}");
        Assert.Contains(expected, v => v == 255);
    }

    [Theory]
    [MemberData(nameof(MorphologyCases))]
    public void ErodeDilateAndHitOrMissMatchOpenCv(int index)
    {
        var c = Case("morphology", index);
        var (shape, input) = Stored(c.GetProperty("input").GetString()!);
        int h = shape[0], w = shape[1], cn = shape[2];
        var cells = c.GetProperty("kernel").EnumerateArray().Select(row => row.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        var kernel = new int[cells.Length, cells[0].Length];
        for (int i = 0; i < cells.Length; i++)
            for (int j = 0; j < cells[0].Length; j++) kernel[i, j] = cells[i][j];
        var flags = new bool[kernel.GetLength(0), kernel.GetLength(1)];
        for (int i = 0; i < cells.Length; i++)
            for (int j = 0; j < cells[0].Length; j++) flags[i, j] = kernel[i, j] != 0;
        var op = c.GetProperty("op").GetString();
        var actual = op switch
        {
            "erode" => OpenCvMorphology.Erode(input, w, h, cn, flags),
            "dilate" => OpenCvMorphology.Dilate(input, w, h, cn, flags),
            "hitmiss" => OpenCvMorphology.HitOrMiss(input, w, h, kernel),
            _ => throw new InvalidDataException($"unknown operation {op}"),
        };
        AssertSameBytes(Stored(c.GetProperty("expected").GetString()!).Bytes, actual, w, cn, $"{op} of {c.GetProperty("input").GetString()}");
    }

    [Theory]
    [MemberData(nameof(OtsuCases))]
    public void OtsuThresholdMatchesOpenCv(int index)
    {
        var c = Case("otsu", index);
        var (_, gray) = Stored(c.GetProperty("input").GetString()!);
        Assert.Equal(c.GetProperty("threshold").GetInt32(), OpenCvMorphology.OtsuThreshold(gray));
    }
}
