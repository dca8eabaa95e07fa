using System.Text.Json;
using SharpDiffusion.Cli;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server.Tests;

/// <summary>txt2img/img2img on the tiny SD1 golden model: the same PNG, byte for byte, as <c>sharpdiffusion generate</c>.</summary>
public class GenerationTests
{
    internal static byte[] CliGenerate(TestServer server, string outName, params string[] extra)
    {
        var output = Path.Combine(server.Root, outName);
        var args = new List<string> { "generate", "--model", server.CheckpointPath, "--tokenizer", TestPaths.GoldenFile("clip"),
            "--config", Path.Combine(server.ModelsDir, "Stable-diffusion", "tiny_sd1.config.json"), "--out", output };
        args.AddRange(extra);
        var stderr = new StringWriter();
        int code = CliApp.Run(args.ToArray(), new StringWriter(), stderr);
        Assert.True(code == 0, stderr.ToString());
        // A batch is written as NAME-1.png, NAME-2.png, ...: the first image is compared.
        return File.ReadAllBytes(extra.Contains("--batch") ? Path.ChangeExtension(output, null) + "-1.png" : output);
    }

    [Fact]
    public async Task Txt2ImgGivesTheCliImageAndA1111Info()
    {
        await using var server = await TestServer.StartAsync();
        var (status, body) = await server.PostAsync("/sdapi/v1/txt2img", new
        {
            prompt = "a photograph of an astronaut riding a horse", negative_prompt = "blurry", steps = 8, sampler_name = "Euler",
            cfg_scale = 7, seed = 42, width = 16, height = 16,
        });
        Assert.True(status == 200, body.ToString());
        Assert.Equal(["images", "parameters", "info"], body.EnumerateObject().Select(p => p.Name));
        var image = body.GetProperty("images")[0].GetString()!;
        Assert.False(image.StartsWith("data:", StringComparison.Ordinal));
        var png = Convert.FromBase64String(image);

        var cli = CliGenerate(server, "cli.png", "--prompt", "a photograph of an astronaut riding a horse", "--negative", "blurry",
            "--steps", "8", "--sampler", "Euler", "--cfg", "7", "--seed", "42", "--width", "16", "--height", "16");
        var parameters = PngTextChunks.Get(PngTextChunks.Read(png), "parameters");
        Assert.Equal(PngTextChunks.Get(PngTextChunks.Read(cli), "parameters"), parameters);
        Assert.Equal(cli, png); // same pixels, same text, same encoder: the same file

        var echo = body.GetProperty("parameters");
        Assert.Equal(8, echo.GetProperty("steps").GetInt32());
        Assert.Equal("Euler", echo.GetProperty("sampler_name").GetString());
        Assert.Equal(1, echo.GetProperty("n_iter").GetInt32());
        Assert.False(echo.GetProperty("enable_hr").GetBoolean());

        // webuiapi does json.loads(response["info"]).
        var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
        Assert.Equal("a photograph of an astronaut riding a horse", info.GetProperty("prompt").GetString());
        Assert.Equal(42, info.GetProperty("seed").GetInt64());
        Assert.Equal([42L], info.GetProperty("all_seeds").EnumerateArray().Select(s => s.GetInt64()));
        Assert.Equal(16, info.GetProperty("width").GetInt32());
        Assert.Equal("Euler", info.GetProperty("sampler_name").GetString());
        Assert.Equal(7, info.GetProperty("cfg_scale").GetDouble());
        Assert.Equal("tiny_sd1", info.GetProperty("sd_model_name").GetString());
        Assert.Equal("3b956ae8fc", info.GetProperty("sd_model_hash").GetString());
        Assert.Equal(1, info.GetProperty("clip_skip").GetInt32());
        Assert.Equal(parameters, info.GetProperty("infotexts")[0].GetString());
        foreach (var field in new[] { "all_prompts", "negative_prompt", "subseed", "all_subseeds", "height", "steps", "batch_size", "job_timestamp", "version" })
            Assert.True(info.TryGetProperty(field, out _), field);

        // png-info reads back what txt2img wrote.
        var (pngInfoStatus, pngInfo) = await server.PostAsync("/sdapi/v1/png-info", new { image = "data:image/png;base64," + image });
        Assert.Equal(200, pngInfoStatus);
        Assert.Equal(parameters, pngInfo.GetProperty("info").GetString());
        Assert.Equal("blurry", pngInfo.GetProperty("parameters").GetProperty("Negative prompt").GetString());
        Assert.Equal("8", pngInfo.GetProperty("parameters").GetProperty("Steps").GetString());
        Assert.Equal("16", pngInfo.GetProperty("parameters").GetProperty("Size-1").GetString());
    }

    [Fact]
    public async Task LenientFieldsBatchesAndLegacySamplerNames()
    {
        await using var server = await TestServer.StartAsync();
        // Numbers as strings and floats, nulls, an unknown field, the legacy "DPM++ 2M Karras" name: as A1111 accepts them.
        var (status, body) = await server.PostAsync("/sdapi/v1/txt2img",
            """
            {"prompt": "a red fox", "steps": "4", "cfg_scale": "6.5", "seed": 7.0, "width": 16, "height": 16, "sampler_name": null,
             "sampler_index": "DPM++ 2M Karras", "styles": null, "not_an_a1111_field": 1, "batch_size": 2, "n_iter": 2}
            """);
        Assert.True(status == 200, body.ToString());
        var images = body.GetProperty("images").EnumerateArray().Select(i => Convert.FromBase64String(i.GetString()!)).ToList();
        Assert.Equal(4, images.Count);
        var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
        Assert.Equal([7L, 8, 9, 10], info.GetProperty("all_seeds").EnumerateArray().Select(s => s.GetInt64()));
        Assert.False(body.GetProperty("parameters").TryGetProperty("not_an_a1111_field", out _));

        // The second iteration is the CLI's batch of 2 from seed 9.
        var cli = CliGenerate(server, "cli.png", "--prompt", "a red fox", "--steps", "4", "--cfg", "6.5", "--seed", "9", "--width", "16",
            "--height", "16", "--sampler", "DPM++ 2M", "--schedule", "karras", "--batch", "2");
        Assert.Equal(cli, images[2]);
        Assert.Contains("Sampler: DPM++ 2M, Schedule type: Karras", PngTextChunks.Get(PngTextChunks.Read(images[2]), "parameters"));
    }

    [Fact]
    public async Task Img2ImgAcceptsRawBase64AndDataUris()
    {
        await using var server = await TestServer.StartAsync();
        var init = CliGenerate(server, "init.png", "--prompt", "a cat", "--steps", "2", "--seed", "1", "--width", "16", "--height", "16");
        var cli = CliGenerate(server, "cli.png", "--prompt", "a dog", "--steps", "4", "--sampler", "Euler", "--seed", "3", "--width", "16",
            "--height", "16", "--init-image", Path.Combine(server.Root, "init.png"), "--strength", "0.6");
        foreach (var encoded in new[] { Convert.ToBase64String(init), "data:image/png;base64," + Convert.ToBase64String(init) })
        {
            var (status, body) = await server.PostAsync("/sdapi/v1/img2img", new
            {
                prompt = "a dog", steps = 4, sampler_name = "Euler", seed = 3, width = 16, height = 16, denoising_strength = 0.6,
                cfg_scale = 7, init_images = new[] { encoded },
            });
            Assert.True(status == 200, body.ToString());
            Assert.Equal(cli, Convert.FromBase64String(body.GetProperty("images")[0].GetString()!));
            Assert.Equal(JsonValueKind.Null, body.GetProperty("parameters").GetProperty("init_images").ValueKind);
        }
    }

    [Fact]
    public async Task JobsApiAnswersAnIdAtOnceAndTheResultLater()
    {
        await using var server = await TestServer.StartAsync();
        var (status, created) = await server.PostAsync("/v2/jobs", new { prompt = "a fox", steps = 3, seed = 5, width = 16, height = 16 });
        Assert.Equal(202, status);
        var id = created.GetProperty("id").GetString()!;
        JsonElement job = default;
        for (int i = 0; i < 600; i++)
        {
            (_, job) = await server.GetAsync("/v2/jobs/" + id);
            if (job.GetProperty("state").GetString() is "done" or "failed") break;
            await Task.Delay(100);
        }
        Assert.Equal("done", job.GetProperty("state").GetString());
        Assert.Equal(1.0, job.GetProperty("progress").GetDouble());
        var png = Convert.FromBase64String(job.GetProperty("result").GetProperty("images")[0].GetString()!);
        Assert.Contains("Seed: 5", PngTextChunks.Get(PngTextChunks.Read(png), "parameters"));
        // The same image by URL, from the outputs folder.
        var url = job.GetProperty("images")[0].GetString()!;
        Assert.Equal($"/v2/jobs/{id}/images/0", url);
        Assert.Equal(png, await server.Client.GetByteArrayAsync(url));
        Assert.True(File.Exists(Path.Combine(server.Root, "outputs", "jobs", id, "0.png")));
        Assert.Equal(404, (await server.GetAsync($"/v2/jobs/{id}/images/1")).Status);
        Assert.Equal(404, (await server.GetAsync($"/v2/jobs/{id}/images/..%2F..%2Fhashes.json")).Status);

        Assert.Equal(404, (await server.GetAsync("/v2/jobs/nope")).Status);
    }

    [Fact]
    public async Task ALoraJobDoesNotLeakIntoTheNextJob()
    {
        await using var server = await TestServer.StartAsync();
        object Request(string prompt) => new { prompt, steps = 3, sampler_name = "Euler", seed = 11, width = 16, height = 16 };
        async Task<byte[]> Image(string prompt)
        {
            var (status, body) = await server.PostAsync("/sdapi/v1/txt2img", Request(prompt));
            Assert.True(status == 200, body.ToString());
            return Convert.FromBase64String(body.GetProperty("images")[0].GetString()!);
        }
        var before = await Image("a fox");
        var withLora = await Image("a fox <lora:tiny_sd1_lora:1>");
        var after = await Image("a fox");
        Assert.Contains("Lora hashes", PngTextChunks.Get(PngTextChunks.Read(withLora), "parameters"));
        Assert.NotEqual(PixelsOf(before), PixelsOf(withLora)); // the LoRA was applied...
        Assert.Equal(before, after); // ...and taken off again
    }

    /// <summary>The IDAT data (pixels) of a PNG, without its text chunks.</summary>
    private static byte[] PixelsOf(byte[] png)
    {
        var pixels = new List<byte>();
        for (int offset = 8; offset < png.Length;)
        {
            int length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(offset));
            if (System.Text.Encoding.ASCII.GetString(png, offset + 4, 4) == "IDAT") pixels.AddRange(png.AsSpan(offset + 8, length).ToArray());
            offset += 12 + length;
        }
        return pixels.ToArray();
    }

    [Fact]
    public async Task TheSdVaeOptionPicksAVaeFromTheVaeFolder()
    {
        await using var server = await TestServer.StartAsync();
        // The tiny checkpoint doubles as a VAE file (first_stage_model.* keys), so the image must equal the CLI's --vae run.
        var vae = Path.Combine(server.ModelsDir, "VAE", "tiny.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(vae)!);
        File.Copy(server.CheckpointPath, vae);
        var (_, vaes) = await server.GetAsync("/sdapi/v1/sd-vae");
        var listed = Assert.Single(vaes.EnumerateArray());
        Assert.Equal("tiny.safetensors", listed.GetProperty("model_name").GetString());
        Assert.Equal(vae, listed.GetProperty("filename").GetString());

        Assert.Equal(200, (await server.PostAsync("/sdapi/v1/options", new { sd_vae = "tiny.safetensors" })).Status);
        var (status, body) = await server.PostAsync("/sdapi/v1/txt2img", new { prompt = "a fox", steps = 3, sampler_name = "Euler", seed = 2, width = 16, height = 16 });
        Assert.True(status == 200, body.ToString());
        var png = Convert.FromBase64String(body.GetProperty("images")[0].GetString()!);
        var cli = CliGenerate(server, "cli.png", "--prompt", "a fox", "--steps", "3", "--sampler", "Euler", "--seed", "2", "--width", "16",
            "--height", "16", "--cfg", "7", "--vae", vae);
        Assert.Equal(cli, png);
        Assert.Contains("VAE hash: 3b956ae8fc, VAE: tiny.safetensors", PngTextChunks.Get(PngTextChunks.Read(png), "parameters"));
        var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
        Assert.Equal("tiny", info.GetProperty("sd_vae_name").GetString());
    }
}
