using System.Text.Json;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Png;
using static TorchSharp.torch;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// A1111's <c>refiner_checkpoint</c> / <c>refiner_switch_at</c> on txt2img: the server's PNG is the CLI's with
/// <c>--refiner</c>, byte for byte; the infotext and <c>extra_generation_params</c> carry A1111's refiner fields; a name
/// not in the models folder is a 422 naming the field. The refiner is tiny_sd1 with a shifted U-Net output bias (A1111
/// takes any checkpoint as refiner).
/// </summary>
public class RefinerRouteTests
{
    private static string AddRefiner(TestServer server)
    {
        var folder = Path.Combine(server.ModelsDir, "Stable-diffusion");
        var path = Path.Combine(folder, "tiny_sd1_refiner.safetensors");
        using (var file = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd1.safetensors")))
        {
            SafetensorsWriter.Write(path, file.Tensors.Select(t =>
            {
                if (t.Name != "model.diffusion_model.out.2.bias") return TensorToWrite.FromModelFile(file, t);
                using var bias = TensorReading.Read(file, t, ScalarType.Float32) + 0.2f;
                var values = bias.data<float>().ToArray();
                var bytes = new byte[values.Length * 4];
                Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
                return TensorToWrite.FromBytes(t.Name, TensorDType.F32, bias.shape, bytes);
            }).ToList());
        }
        File.Copy(Path.Combine(folder, "tiny_sd1.config.json"), Path.Combine(folder, "tiny_sd1_refiner.config.json"));
        return path;
    }

    [Fact]
    public async Task Txt2ImgWithARefinerGivesTheCliImageAndA1111sFields()
    {
        await using var server = await TestServer.StartAsync();
        var refiner = AddRefiner(server);
        var (status, body) = await server.PostAsync("/sdapi/v1/txt2img", new
        {
            prompt = "a red fox", steps = 6, sampler_name = "Euler", cfg_scale = 7, seed = 4, width = 16, height = 16,
            refiner_checkpoint = "tiny_sd1_refiner", refiner_switch_at = 0.5,
        });
        Assert.True(status == 200, body.ToString());
        var png = Convert.FromBase64String(body.GetProperty("images")[0].GetString()!);
        string[] common = ["--prompt", "a red fox", "--steps", "6", "--sampler", "Euler", "--cfg", "7", "--seed", "4", "--width", "16", "--height", "16"];
        var cli = GenerationTests.CliGenerate(server, "cli.png", [.. common, "--refiner", refiner, "--refiner-config", Path.ChangeExtension(refiner, ".config.json"), "--refiner-switch-at", "0.5"]);
        Assert.Equal(cli, png);
        Assert.NotEqual(GenerationTests.CliGenerate(server, "plain.png", common), png);

        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(refiner))).ToLowerInvariant()[..10];
        Assert.EndsWith($", Refiner: tiny_sd1_refiner [{hash}], Refiner switch at: 0.5", PngTextChunks.Get(PngTextChunks.Read(png), "parameters"));
        var extra = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement.GetProperty("extra_generation_params");
        Assert.Equal($"tiny_sd1_refiner [{hash}]", extra.GetProperty("Refiner").GetString());
        Assert.Equal(0.5, extra.GetProperty("Refiner switch at").GetDouble());
    }

    [Fact]
    public async Task AnUnknownRefinerIsA422NamingTheField()
    {
        await using var server = await TestServer.StartAsync();
        var (status, body) = await server.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", steps = 2, width = 16, height = 16, refiner_checkpoint = "../../etc/passwd" });
        Assert.Equal(422, status);
        Assert.Contains("refiner_checkpoint", body.ToString());
    }
}
