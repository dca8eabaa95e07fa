using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// /sdapi/v1/extra-single-image against the engine's own resize and ESRGAN upscale of the same image
/// (A1111's Upscaler.upscale: resize by the scale, then Lanczos to the size rounded down to a multiple of 8).
/// </summary>
public class ExtrasTests
{
    /// <summary>A 16x12 gradient with a PNG parameters chunk, as a generated image has.</summary>
    private static (RgbImage Image, byte[] Png) Source()
    {
        var image = new RgbImage(16, 12);
        for (int y = 0; y < 12; y++)
            for (int x = 0; x < 16; x++)
            {
                int i = (y * 16 + x) * 3;
                (image.Pixels[i], image.Pixels[i + 1], image.Pixels[i + 2]) = ((byte)(x * 16), (byte)(y * 20), (byte)((x * y) % 256));
            }
        return (image, PngEncoder.Encode(image.Pixels, 16, 12, [new("parameters", "a fox\nSteps: 3, Seed: 1")]));
    }

    private static async Task<(RgbImage Image, string Html, IReadOnlyList<PngText> Texts)> Extras(TestServer server, object request)
    {
        var (status, body) = await server.PostAsync("/sdapi/v1/extra-single-image", request);
        Assert.True(status == 200, body.ToString());
        var png = Convert.FromBase64String(body.GetProperty("image").GetString()!);
        var path = Path.Combine(server.Root, Guid.NewGuid().ToString("N") + ".png");
        File.WriteAllBytes(path, png);
        return (ImageFileReader.LoadRgb(path), body.GetProperty("html_info").GetString()!, PngTextChunks.Read(png));
    }

    [Fact]
    public async Task LanczosScaleByIsTheEnginesResize()
    {
        await using var server = await TestServer.StartAsync(withModels: false);
        var (source, png) = Source();
        var (image, html, texts) = await Extras(server, new { image = Convert.ToBase64String(png), upscaling_resize = 2, upscaler_1 = "Lanczos" });
        // 16x12 x 2 = 32x24, already multiples of 8: one Lanczos resize.
        Assert.Equal(PillowResize.Resize(source, 32, 24, PillowFilter.Lanczos).Pixels, image.Pixels);
        Assert.Equal("<p>Postprocess upscale by: 2.0, Postprocess upscaler: Lanczos</p>", html);
        Assert.Equal("a fox\nSteps: 3, Seed: 1", PngTextChunks.Get(texts, "parameters"));
        Assert.Equal("Postprocess upscale by: 2.0, Postprocess upscaler: Lanczos", PngTextChunks.Get(texts, "postprocessing"));

        // 1.5x: 24x18 by Lanczos, then Lanczos again to 24x16 (the height rounded down to a multiple of 8).
        (image, _, _) = await Extras(server, new { image = "data:image/png;base64," + Convert.ToBase64String(png), upscaling_resize = 1.5, upscaler_1 = "Lanczos" });
        var expected = PillowResize.Resize(PillowResize.Resize(source, 24, 18, PillowFilter.Lanczos), 24, 16, PillowFilter.Lanczos);
        Assert.Equal((24, 16), (image.Width, image.Height));
        Assert.Equal(expected.Pixels, image.Pixels);

        // "None" leaves the image as it is.
        (image, html, _) = await Extras(server, new { image = Convert.ToBase64String(png), upscaling_resize = 2, upscaler_1 = "None" });
        Assert.Equal(source.Pixels, image.Pixels);
        Assert.Equal("<p></p>", html);
    }

    [Fact]
    public async Task ScaleToCropsAndASecondUpscalerIsBlended()
    {
        await using var server = await TestServer.StartAsync(withModels: false);
        var (source, png) = Source();
        // Scale to 40x24: the larger ratio (40/16 = 2.5) resizes to 40x30, then to 40x24 (30 rounded down to a multiple of 8); the crop keeps it.
        var (image, html, _) = await Extras(server, new
        {
            image = Convert.ToBase64String(png), resize_mode = 1, upscaling_resize_w = 40, upscaling_resize_h = 24, upscaling_crop = true,
            upscaler_1 = "Lanczos", upscaler_2 = "Nearest", extras_upscaler_2_visibility = 0.25,
        });
        var lanczos = PillowResize.Resize(source, 40, 30, PillowFilter.Lanczos);
        lanczos = PillowResize.Resize(lanczos, 40, 24, PillowFilter.Lanczos);
        var nearest = PillowResize.Resize(ExtrasUpscale.Nearest(source, 40, 30), 40, 24, PillowFilter.Lanczos);
        var expected = new byte[40 * 24 * 3];
        for (int i = 0; i < expected.Length; i++)
            expected[i] = (byte)(lanczos.Pixels[i] + 0.25f * (nearest.Pixels[i] - lanczos.Pixels[i]));
        Assert.Equal((40, 24), (image.Width, image.Height));
        Assert.Equal(expected, image.Pixels);
        Assert.Equal("<p>Postprocess upscale to: 40x24, Postprocess crop to: 40x24, Postprocess upscaler: Lanczos, Postprocess upscaler 2: Nearest</p>", html);
    }

    [Fact]
    public async Task AnEsrganModelOfTheModelsFolderIsTheEnginesUpscale()
    {
        await using var server = await TestServer.StartAsync(withModels: false);
        Directory.CreateDirectory(Path.Combine(server.ModelsDir, "ESRGAN"));
        var modelPath = Path.Combine(server.ModelsDir, "ESRGAN", "tiny_rrdb_x2.pth");
        File.Copy(TestPaths.GoldenFile("ext/tiny_rrdb_x2.pth"), modelPath);
        var (source, png) = Source();
        var (image, html, _) = await Extras(server, new { image = Convert.ToBase64String(png), upscaling_resize = 2, upscaler_1 = "tiny_rrdb_x2" });
        using var model = UpscalerModel.Load(modelPath);
        var expected = ModelUpscale.Upscale(model, source, 2);
        Assert.Equal((32, 24), (image.Width, image.Height));
        Assert.Equal(expected.Pixels, image.Pixels);
        Assert.Contains("Postprocess upscaler: tiny_rrdb_x2", html);
    }

    [Fact]
    public async Task BadRequestsAre422sNamingTheField()
    {
        await using var server = await TestServer.StartAsync(withModels: false);
        var (_, png) = Source();
        var (status, body) = await server.PostAsync("/sdapi/v1/extra-single-image", new
        {
            image = Convert.ToBase64String(png), upscaler_1 = "NoSuchModel", upscaler_2 = "../../etc/passwd", resize_mode = 3, gfpgan_visibility = 0.5,
        });
        Assert.Equal(422, status);
        Assert.Equal(["gfpgan_visibility", "resize_mode", "upscaler_1", "upscaler_2"],
            body.GetProperty("detail").EnumerateArray().Select(e => e.GetProperty("loc")[1].GetString()).Order(StringComparer.Ordinal));
        (status, body) = await server.PostAsync("/sdapi/v1/extra-single-image", new { image = "https://example.com/a.png", upscaler_1 = "Lanczos" });
        Assert.Equal(422, status);
        Assert.Equal("image", body.GetProperty("detail")[0].GetProperty("loc")[1].GetString());
        (status, body) = await server.PostAsync("/sdapi/v1/extra-single-image", new { image = Convert.ToBase64String(png), upscaler_1 = "Lanczos", upscaling_resize = 8 * 1000 });
        Assert.Equal(422, status);
    }
}
