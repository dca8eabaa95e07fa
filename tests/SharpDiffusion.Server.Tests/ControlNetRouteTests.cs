using System.Text.Json;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// sd-webui-controlnet's API on the tiny SD1 model and the tiny ControlNet: <c>alwayson_scripts.controlnet.args</c> units
/// give the PNG, byte for byte, that <c>generate --control</c> writes; the extension's infotext field is in the image and
/// in <c>extra_generation_params</c>; its model and module lists answer; what the engine cannot do is a 422.
/// </summary>
public class ControlNetRouteTests
{
    private static string AddControlNet(TestServer server)
    {
        var folder = Directory.CreateDirectory(Path.Combine(server.ModelsDir, "ControlNet")).FullName;
        File.Copy(TestPaths.GoldenFile("ext/tiny_controlnet_sd1.pth"), Path.Combine(folder, "tiny_controlnet_sd1.pth"));
        return Path.Combine(folder, "tiny_controlnet_sd1.pth");
    }

    /// <summary>A 24x20 control image (another shape than the job: the crop-and-resize path runs): a gradient with a bright square.</summary>
    private static byte[] ControlImage(string path)
    {
        var rgb = new byte[24 * 20 * 3];
        for (int y = 0; y < 20; y++)
            for (int x = 0; x < 24; x++)
            {
                int i = (y * 24 + x) * 3;
                bool square = x is >= 6 and < 16 && y is >= 5 and < 14;
                (rgb[i], rgb[i + 1], rgb[i + 2]) = square ? ((byte)250, (byte)250, (byte)250) : ((byte)(x * 10), (byte)(y * 12), (byte)90);
            }
        PngEncoder.Save(path, rgb, 24, 20);
        return File.ReadAllBytes(path);
    }

    [Fact]
    public async Task AControlNetUnitGivesTheCliImageAndTheExtensionsField()
    {
        await using var server = await TestServer.StartAsync();
        AddControlNet(server);
        var imagePath = Path.Combine(server.Root, "control.png");
        var image = ControlImage(imagePath);
        var (status, body) = await server.PostAsync("/sdapi/v1/txt2img", new
        {
            prompt = "a red fox", steps = 4, sampler_name = "Euler", cfg_scale = 7, seed = 4, width = 16, height = 16,
            alwayson_scripts = new
            {
                ControlNet = new
                {
                    args = new object[]
                    {
                        new { enabled = true, module = "none", model = "tiny_controlnet_sd1 [abcdef12]", weight = 0.8, image = Convert.ToBase64String(image),
                              resize_mode = "Crop and Resize", guidance_start = 0.0, guidance_end = 0.5, processor_res = 512, threshold_a = -1, threshold_b = -1,
                              control_mode = "Balanced", pixel_perfect = false },
                        new { enabled = false, model = "tiny_controlnet_sd1" },
                    },
                },
            },
        });
        Assert.True(status == 200, body.ToString());
        var png = Convert.FromBase64String(body.GetProperty("images")[0].GetString()!);
        string[] common = ["--prompt", "a red fox", "--steps", "4", "--sampler", "Euler", "--cfg", "7", "--seed", "4", "--width", "16", "--height", "16",
            "--models-dir", server.ModelsDir];
        var cli = GenerationTests.CliGenerate(server, "cli.png", [.. common, "--control", $"tiny_controlnet_sd1:{imagePath}:0.8:0:0.5"]);
        Assert.Equal(cli, png);
        Assert.NotEqual(GenerationTests.CliGenerate(server, "plain.png", common), png);

        var parameters = PngTextChunks.Get(PngTextChunks.Read(png), "parameters")!;
        Assert.Contains("ControlNet 0: \"Module: none, Model: tiny_controlnet_sd1 [", parameters);
        Assert.Contains("Weight: 0.8, Resize Mode: Crop and Resize, Guidance Start: 0, Guidance End: 0.5", parameters);
        var extra = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement.GetProperty("extra_generation_params");
        Assert.StartsWith("Module: none, Model: tiny_controlnet_sd1 [", extra.GetProperty("ControlNet 0").GetString());
    }

    [Fact]
    public async Task ModelAndModuleListsAnswerAndUnsupportedUnitsAre422s()
    {
        await using var server = await TestServer.StartAsync();
        AddControlNet(server);
        var (status, models) = await server.GetAsync("/controlnet/model_list");
        Assert.Equal(200, status);
        Assert.Contains("tiny_controlnet_sd1", models.GetProperty("model_list").EnumerateArray().Select(m => m.GetString()));
        var (_, modules) = await server.GetAsync("/controlnet/module_list");
        Assert.Equal(["none", "canny", "invert"], modules.GetProperty("module_list").EnumerateArray().Select(m => m.GetString()!).ToArray());

        var image = Convert.ToBase64String(ControlImage(Path.Combine(server.Root, "c.png")));
        foreach (var (unit, message) in new (object Unit, string Message)[]
        {
            (new { model = "no_such_net", image }, "not found"),
            (new { model = "../../etc/passwd", image }, "not found"),
            (new { model = "tiny_controlnet_sd1", module = "depth_midas", image }, "preprocessor 'depth_midas'"),
            (new { model = "tiny_controlnet_sd1", image, control_mode = "ControlNet is more important" }, "control_mode"),
            (new { model = "tiny_controlnet_sd1", image, pixel_perfect = true }, "pixel_perfect"),
            (new { model = "tiny_controlnet_sd1" }, "needs a control image"),
        })
        {
            var (code, body) = await server.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", steps = 2, width = 16, height = 16, alwayson_scripts = new { controlnet = new { args = new[] { unit } } } });
            Assert.True(code == 422, $"{message}: {code} {body}");
            Assert.Equal("alwayson_scripts", body.GetProperty("detail")[0].GetProperty("loc")[1].GetString());
            Assert.Contains(message, body.ToString());
        }
    }
}
