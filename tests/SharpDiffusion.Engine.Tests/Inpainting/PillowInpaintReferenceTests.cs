using System.Text.Json;
using SharpDiffusion.Engine.Inpainting;
using SharpDiffusion.Engine.Upscaling;

namespace SharpDiffusion.Engine.Tests.Inpainting;

/// <summary>
/// The image arithmetic of A1111's masked content "fill" and "only masked" resizes against Pillow's own output
/// (tests/data/pillow/inpaint_reference.json, made by make_inpaint_reference.py beside it with Pillow 9.4): bit for bit.
/// </summary>
public class PillowInpaintReferenceTests
{
    private static readonly Lazy<JsonElement> Reference = new(() =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.Require(Path.Combine(TestPaths.Data, "pillow", "inpaint_reference.json")))).RootElement);

    private static byte[] Bytes(JsonElement e) => e.EnumerateArray().Select(v => (byte)v.GetInt32()).ToArray();

    [Theory]
    [InlineData("0")]
    [InlineData("1.5")]
    [InlineData("2")]
    [InlineData("4")]
    [InlineData("16")]
    [InlineData("64")]
    [InlineData("256")]
    public void GaussianBlurMatchesPillow(string radius)
    {
        var blur = Reference.Value.GetProperty("blur");
        int w = blur.GetProperty("width").GetInt32(), h = blur.GetProperty("height").GetInt32();
        var output = PillowGaussianBlur.Blur(Bytes(blur.GetProperty("input")), w, h, 4, float.Parse(radius, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(Bytes(blur.GetProperty("outputs").GetProperty(radius)), output);
    }

    [Fact]
    public void AlphaCompositeMatchesPillowWithTransparentAndOpaquePixels()
    {
        var c = Reference.Value.GetProperty("alpha_composite");
        var destination = Bytes(c.GetProperty("destination"));
        InpaintMasking.AlphaComposite(destination, Bytes(c.GetProperty("source")));
        Assert.Equal(Bytes(c.GetProperty("output")), destination);
    }

    [Fact]
    public void FillMatchesPillowAndKeepsTheUnmaskedPixels()
    {
        var c = Reference.Value.GetProperty("fill");
        int w = c.GetProperty("width").GetInt32(), h = c.GetProperty("height").GetInt32();
        var image = new RgbImage(w, h, Bytes(c.GetProperty("image")));
        var mask = Bytes(c.GetProperty("mask"));
        var filled = InpaintMasking.Fill(image, mask);
        Assert.Equal(Bytes(c.GetProperty("output")), filled.Pixels);

        int unmasked = 0, fullyMaskedChanged = 0, fullyMasked = 0;
        for (int i = 0; i < w * h; i++)
        {
            if (mask[i] == 0)
            {
                unmasked++;
                for (int ch = 0; ch < 3; ch++) Assert.Equal(image.Pixels[i * 3 + ch], filled.Pixels[i * 3 + ch]);
            }
            else if (mask[i] == 255)
            {
                fullyMasked++;
                if (Enumerable.Range(0, 3).Any(ch => image.Pixels[i * 3 + ch] != filled.Pixels[i * 3 + ch])) fullyMaskedChanged++;
            }
        }
        Assert.True(unmasked > 0 && fullyMasked > 0, "the case has both kinds of pixel");
        Assert.True(fullyMaskedChanged > fullyMasked * 9 / 10, $"{fullyMaskedChanged} of {fullyMasked} hole pixels were filled");
    }

    [Fact]
    public void ResizeImageModesMatchPillow()
    {
        foreach (var c in Reference.Value.GetProperty("resize").EnumerateArray())
        {
            int mode = c.GetProperty("mode").GetInt32(), channels = c.GetProperty("channels").GetInt32();
            int w = c.GetProperty("width").GetInt32(), h = c.GetProperty("height").GetInt32();
            int nw = c.GetProperty("new_width").GetInt32(), nh = c.GetProperty("new_height").GetInt32();
            var input = Bytes(c.GetProperty("input"));
            var output = mode == 1
                ? A1111ResizeImage.CropAndResize(input, w, h, channels, nw, nh)
                : A1111ResizeImage.ResizeAndFill(input, w, h, channels, nw, nh);
            Assert.True(Bytes(c.GetProperty("output")).SequenceEqual(output), $"resize_image mode {mode} {w}x{h}x{channels} -> {nw}x{nh}");
        }
    }
}
