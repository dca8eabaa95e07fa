using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// Real clients' calls, as their code makes them, against a server on the tiny SD1 model: Open WebUI
/// (backend/open_webui/routers/images.py), SillyTavern (src/endpoints/stable-diffusion.js) and webuiapi
/// (webuiapi/webuiapi.py, mix1009/sdwebuiapi).
/// </summary>
public class ClientConformanceTests
{
    /// <summary>A second checkpoint (the tiny model under another name) to switch to.</summary>
    private static void AddSecondCheckpoint(TestServer server)
    {
        var folder = Path.Combine(server.ModelsDir, "Stable-diffusion");
        File.Copy(server.CheckpointPath, Path.Combine(folder, "zz_other.safetensors"));
        File.Copy(Path.Combine(folder, "tiny_sd1.config.json"), Path.Combine(folder, "zz_other.config.json"));
    }

    /// <summary>A request with Open WebUI's headers: "authorization" is sent, empty, when no API auth is configured.</summary>
    private static HttpRequestMessage OpenWebUi(HttpMethod method, string path, object? body = null)
    {
        var message = new HttpRequestMessage(method, path);
        message.Headers.TryAddWithoutValidation("authorization", "");
        if (body != null) message.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        return message;
    }

    private static async Task<JsonElement> Send(TestServer server, HttpRequestMessage message)
    {
        using var response = await server.Client.SendAsync(message);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{message.Method} {message.RequestUri}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task OpenWebUiSwitchesTheModelByPostingTheWholeOptionsDictBack()
    {
        await using var server = await TestServer.StartAsync();
        AddSecondCheckpoint(server);
        // get_models: the titles of /sd-models are the model ids it offers.
        var models = await Send(server, OpenWebUi(HttpMethod.Get, "/sdapi/v1/sd-models"));
        var titles = models.EnumerateArray().Select(m => m.GetProperty("title").GetString()!).ToList();
        Assert.Equal(["tiny_sd1.safetensors", "zz_other.safetensors"], titles);

        // set_image_model: GET options; if the model differs, POST the whole dict back with sd_model_checkpoint changed.
        var options = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>((await Send(server, OpenWebUi(HttpMethod.Get, "/sdapi/v1/options"))).GetRawText())!;
        Assert.NotEqual("zz_other.safetensors", options["sd_model_checkpoint"].GetString());
        var posted = options.ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
        posted["sd_model_checkpoint"] = "zz_other.safetensors";
        await Send(server, OpenWebUi(HttpMethod.Post, "/sdapi/v1/options", posted));
        var after = await Send(server, OpenWebUi(HttpMethod.Get, "/sdapi/v1/options"));
        Assert.StartsWith("zz_other.safetensors", after.GetProperty("sd_model_checkpoint").GetString());
        // The rest of the dict came back unchanged.
        Assert.Equal(options["CLIP_stop_at_last_layers"].GetInt32(), after.GetProperty("CLIP_stop_at_last_layers").GetInt32());
        Assert.Equal(options["samples_format"].GetString(), after.GetProperty("samples_format").GetString());

        // image_generations: {prompt, batch_size, width, height, steps, negative_prompt}; images[i] is raw base64, info a JSON string.
        var result = await Send(server, OpenWebUi(HttpMethod.Post, "/sdapi/v1/txt2img", new
        {
            prompt = "a lighthouse", batch_size = 1, width = 16, height = 16, steps = 2, negative_prompt = "fog",
        }));
        var png = Convert.FromBase64String(result.GetProperty("images")[0].GetString()!);
        Assert.Contains("Model: zz_other", PngTextChunks.Get(PngTextChunks.Read(png), "parameters"));
        var info = JsonDocument.Parse(result.GetProperty("info").GetString()!).RootElement;
        Assert.Equal("zz_other", info.GetProperty("sd_model_name").GetString());
    }

    [Fact]
    public async Task SillyTavernPollsProgressWhileItsJobRunsAndAfter()
    {
        GatedBackend? gated = null;
        await using var server = await TestServer.StartAsync(backendFactory: o => gated = new GatedBackend(o) { GateStep = 2, GatedPrompt = "tavern" });
        using var backend = gated!;
        // /set-model: POST {sd_model_checkpoint} alone, then poll /progress until progress == 0.0 and job_count == 0.
        Assert.Equal(200, (await server.PostAsync("/sdapi/v1/options", new { sd_model_checkpoint = "tiny_sd1.safetensors" })).Status);
        var (_, idle) = await server.GetAsync("/sdapi/v1/progress");
        Assert.Equal(0.0, idle.GetProperty("progress").GetDouble());
        Assert.Equal(0, idle.GetProperty("state").GetProperty("job_count").GetInt32());

        // /generate: GET options ('forge_preset' in options tells Forge apart), then POST txt2img with its own fields
        // (url, auth) left in the body.
        var (_, options) = await server.GetAsync("/sdapi/v1/options");
        Assert.False(options.TryGetProperty("forge_preset", out _));
        var generation = server.PostAsync("/sdapi/v1/txt2img", new
        {
            url = "http://127.0.0.1:7860", auth = "", prompt = "a tavern", negative_prompt = "", sampler_name = "Euler", scheduler = "Automatic",
            steps = 6, cfg_scale = 7, width = 16, height = 16, restore_faces = false, enable_hr = false, hr_upscaler = "Latent", hr_scale = 2.0,
            hr_additional_modules = Array.Empty<string>(), denoising_strength = 0.7, hr_second_pass_steps = 0, seed = 77,
            override_settings = new { CLIP_stop_at_last_layers = 1 }, override_settings_restore_afterwards = true, clip_skip = 1,
        });
        await backend.WaitAtGateAsync();
        var (_, running) = await server.GetAsync("/sdapi/v1/progress?skip_current_image=false");
        var state = running.GetProperty("state");
        Assert.Equal(2, state.GetProperty("sampling_step").GetInt32());
        Assert.Equal(6, state.GetProperty("sampling_steps").GetInt32());
        Assert.Equal(1, state.GetProperty("job_count").GetInt32());
        double progress = running.GetProperty("progress").GetDouble();
        Assert.Equal(0.01 + 2.0 / 6, progress, 6); // A1111: 0.01 + (job_no + step / steps) / job_count
        // The live preview: a base64 PNG of the latent's size (16 / 2 = 8 pixels square: the tiny VAE downsamples by 2).
        var preview = Convert.FromBase64String(running.GetProperty("current_image").GetString()!);
        Assert.Equal([137, 80, 78, 71], preview[..4]);
        Assert.Equal(8, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(preview.AsSpan(16)));
        backend.Release();

        var (status, body) = await generation;
        Assert.True(status == 200, body.ToString());
        Assert.Equal(1, body.GetProperty("images").GetArrayLength());
        // After the job: A1111's idle answer.
        var (_, after) = await server.GetAsync("/sdapi/v1/progress?skip_current_image=false");
        Assert.Equal(0.0, after.GetProperty("progress").GetDouble());
        Assert.Equal(0, after.GetProperty("state").GetProperty("job_count").GetInt32());
        Assert.Equal(JsonValueKind.Null, after.GetProperty("current_image").ValueKind);

        // When its caller goes away it POSTs /interrupt with no body at all.
        using var interrupt = await server.Client.PostAsync("/sdapi/v1/interrupt", null);
        Assert.Equal(200, (int)interrupt.StatusCode);
    }

    [Fact]
    public async Task WebuiapiParsesInfoAsJsonAndDecodesEveryImage()
    {
        await using var server = await TestServer.StartAsync();
        // WebUIApi.__init__ -> check_controlnet/check_adetailer: "controlnet m2m" in get_scripts()["txt2img"].
        var (_, scripts) = await server.GetAsync("/sdapi/v1/scripts");
        Assert.Equal(JsonValueKind.Array, scripts.GetProperty("txt2img").ValueKind);

        // WebUIApi.txt2img(prompt=..., seed=1234, steps=3, width=16, height=16, batch_size=2): its whole default payload.
        var (status, body) = await server.PostAsync("/sdapi/v1/txt2img", new Dictionary<string, object?>
        {
            ["enable_hr"] = false, ["hr_scale"] = 2, ["hr_upscaler"] = "Latent", ["hr_second_pass_steps"] = 0, ["hr_resize_x"] = 0,
            ["hr_resize_y"] = 0, ["denoising_strength"] = 0.7, ["firstphase_width"] = 0, ["firstphase_height"] = 0,
            ["prompt"] = "a lighthouse", ["styles"] = Array.Empty<string>(), ["seed"] = 1234, ["subseed"] = -1, ["subseed_strength"] = 0.0,
            ["seed_resize_from_h"] = 0, ["seed_resize_from_w"] = 0, ["batch_size"] = 2, ["n_iter"] = 1, ["steps"] = 3, ["cfg_scale"] = 7.0,
            ["width"] = 16, ["height"] = 16, ["restore_faces"] = false, ["tiling"] = false, ["do_not_save_samples"] = false,
            ["do_not_save_grid"] = false, ["negative_prompt"] = "", ["eta"] = 1.0, ["s_churn"] = 0, ["s_tmax"] = 0, ["s_tmin"] = 0,
            ["s_noise"] = 1, ["override_settings"] = new Dictionary<string, object>(), ["override_settings_restore_afterwards"] = true,
            ["sampler_name"] = "Euler a", ["sampler_index"] = "Euler a", ["script_name"] = null, ["script_args"] = Array.Empty<object>(),
            ["send_images"] = true, ["save_images"] = false, ["alwayson_scripts"] = new Dictionary<string, object>(),
        });
        Assert.True(status == 200, body.ToString());
        // _to_api_result: images = [Image.open(BytesIO(b64decode(i)))], info = json.loads(r["info"]), parameters = r["parameters"].
        var images = body.GetProperty("images").EnumerateArray().Select(i => Convert.FromBase64String(i.GetString()!)).ToList();
        Assert.Equal(2, images.Count);
        var info = JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement;
        Assert.Equal(1234, info.GetProperty("seed").GetInt64());
        Assert.Equal([1234L, 1235L], info.GetProperty("all_seeds").EnumerateArray().Select(s => s.GetInt64()));
        Assert.Equal("a lighthouse", info.GetProperty("prompt").GetString());
        Assert.Equal("Euler a", info.GetProperty("sampler_name").GetString());
        for (int i = 0; i < 2; i++)
        {
            var path = Path.Combine(server.Root, $"webuiapi-{i}.png");
            File.WriteAllBytes(path, images[i]);
            var rgb = Engine.Upscaling.ImageFileReader.LoadRgb(path);
            Assert.Equal((16, 16), (rgb.Width, rgb.Height));
            var parameters = PngTextChunks.Get(PngTextChunks.Read(images[i]), "parameters");
            Assert.Equal(info.GetProperty("infotexts")[i].GetString(), parameters);
            Assert.Contains($"Seed: {1234 + i}", parameters);
        }
        Assert.Equal(3, body.GetProperty("parameters").GetProperty("steps").GetInt32());
        Assert.Equal("a lighthouse", body.GetProperty("parameters").GetProperty("prompt").GetString());
    }
}
