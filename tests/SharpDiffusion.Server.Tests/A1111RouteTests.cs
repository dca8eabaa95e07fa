using System.Text.Json;

namespace SharpDiffusion.Server.Tests;

/// <summary>The /sdapi/v1 routes that need no generation, against A1111 1.9/1.10's field names and shapes.</summary>
public class A1111RouteTests
{
    // tiny_sd1.config.json's checkpoint_sha256: an outside reference for the hash the server computes.
    private const string TinySha256 = "3b956ae8fc8dd8766eb9c8fab76110d9024d47e11fdb94fb639e641865d27a3e";

    private static string[] Keys(JsonElement obj) => obj.EnumerateObject().Select(p => p.Name).ToArray();

    [Fact]
    public async Task SdModelsListsTheCheckpointAndGainsItsHashOnceSelected()
    {
        await using var server = await TestServer.StartAsync();
        var (status, models) = await server.GetAsync("/sdapi/v1/sd-models");
        Assert.Equal(200, status);
        var model = Assert.Single(models.EnumerateArray());
        Assert.Equal(["title", "model_name", "hash", "sha256", "filename", "config"], Keys(model));
        Assert.Equal("tiny_sd1.safetensors", model.GetProperty("title").GetString()); // not hashed yet, as A1111
        Assert.Equal("tiny_sd1", model.GetProperty("model_name").GetString());
        Assert.Equal(server.CheckpointPath, model.GetProperty("filename").GetString());
        Assert.EndsWith("tiny_sd1.config.json", model.GetProperty("config").GetString());

        // Open WebUI's round trip: read the whole options dict, change the model, post it all back.
        var (_, options) = await server.GetAsync("/sdapi/v1/options");
        var dict = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(options.GetRawText())!;
        var changed = dict.ToDictionary(kv => kv.Key, kv => (object?)kv.Value);
        changed["sd_model_checkpoint"] = "tiny_sd1";
        var (postStatus, _) = await server.PostAsync("/sdapi/v1/options", changed);
        Assert.Equal(200, postStatus);

        (_, models) = await server.GetAsync("/sdapi/v1/sd-models");
        model = models[0];
        Assert.Equal("tiny_sd1.safetensors [3b956ae8fc]", model.GetProperty("title").GetString());
        Assert.Equal("3b956ae8fc", model.GetProperty("hash").GetString());
        Assert.Equal(TinySha256, model.GetProperty("sha256").GetString());
        (_, options) = await server.GetAsync("/sdapi/v1/options");
        Assert.Equal("tiny_sd1.safetensors [3b956ae8fc]", options.GetProperty("sd_model_checkpoint").GetString());
        Assert.Equal(TinySha256, options.GetProperty("sd_checkpoint_hash").GetString());
        Assert.Equal("Automatic", options.GetProperty("sd_vae").GetString());
        Assert.Equal(1, options.GetProperty("CLIP_stop_at_last_layers").GetInt32());
        Assert.Equal("png", options.GetProperty("samples_format").GetString());
    }

    [Fact]
    public async Task OptionsKeepPartialUpdatesAndUnknownKeys()
    {
        await using var server = await TestServer.StartAsync();
        var (status, body) = await server.PostAsync("/sdapi/v1/options", new { CLIP_stop_at_last_layers = 2, some_extension_setting = "x" });
        Assert.Equal(200, status);
        Assert.Equal(JsonValueKind.Null, body.ValueKind);
        var (_, options) = await server.GetAsync("/sdapi/v1/options");
        Assert.Equal(2, options.GetProperty("CLIP_stop_at_last_layers").GetInt32());
        Assert.Equal("x", options.GetProperty("some_extension_setting").GetString());
        Assert.Equal("tiny_sd1.safetensors", options.GetProperty("sd_model_checkpoint").GetString());

        (status, body) = await server.PostAsync("/sdapi/v1/options", new { CLIP_stop_at_last_layers = 40 });
        Assert.Equal(422, status);
        Assert.Equal("CLIP_stop_at_last_layers", body.GetProperty("detail")[0].GetProperty("loc")[1].GetString());
    }

    [Fact]
    public async Task SamplersSchedulersAndUpscalersHaveA1111Shapes()
    {
        await using var server = await TestServer.StartAsync();
        var (_, samplers) = await server.GetAsync("/sdapi/v1/samplers");
        var byName = samplers.EnumerateArray().ToDictionary(s => s.GetProperty("name").GetString()!);
        foreach (var name in new[] { "Euler a", "Euler", "Heun", "DPM2", "DPM2 a", "LMS", "DPM++ 2M", "DPM++ 2S a", "DDIM" })
            Assert.Equal(["name", "aliases", "options"], Keys(byName[name]));
        Assert.Equal(["k_euler_a", "k_euler_ancestral"], byName["Euler a"].GetProperty("aliases").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal("True", byName["DPM2"].GetProperty("options").GetProperty("discard_next_to_last_sigma").GetString());

        var (_, schedulers) = await server.GetAsync("/sdapi/v1/schedulers");
        // A1111 1.10's twelve schedulers, in its order.
        Assert.Equal(["automatic", "uniform", "karras", "exponential", "polyexponential", "sgm_uniform", "kl_optimal", "align_your_steps",
            "simple", "normal", "ddim", "beta"], schedulers.EnumerateArray().Select(s => s.GetProperty("name").GetString()));
        Assert.Equal(["name", "label", "aliases", "default_rho", "need_inner_model"], Keys(schedulers[2]));
        Assert.Equal(7.0, schedulers[2].GetProperty("default_rho").GetDouble());
        Assert.Equal("SGM Uniform", schedulers[5].GetProperty("label").GetString());

        var (_, upscalers) = await server.GetAsync("/sdapi/v1/upscalers");
        Assert.Equal("None", upscalers[0].GetProperty("name").GetString());
        Assert.Equal(["name", "model_name", "model_path", "model_url", "scale"], Keys(upscalers[0]));

        var (status, modes) = await server.GetAsync("/sdapi/v1/latent-upscale-modes");
        Assert.Equal(200, status);
        Assert.Equal(JsonValueKind.Array, modes.ValueKind);
    }

    [Fact]
    public async Task NetworkListsReadTheModelsFolder()
    {
        await using var server = await TestServer.StartAsync();
        var (_, loras) = await server.GetAsync("/sdapi/v1/loras");
        var lora = Assert.Single(loras.EnumerateArray());
        Assert.Equal(["name", "alias", "path", "metadata"], Keys(lora));
        Assert.Equal("tiny_sd1_lora", lora.GetProperty("name").GetString());
        Assert.Equal(Path.Combine(server.ModelsDir, "Lora", "tiny_sd1_lora.safetensors"), lora.GetProperty("path").GetString());
        Assert.Equal(JsonValueKind.Object, lora.GetProperty("metadata").ValueKind);

        var (_, embeddings) = await server.GetAsync("/sdapi/v1/embeddings");
        Assert.Equal(["loaded", "skipped"], Keys(embeddings));
        var tinyemb = embeddings.GetProperty("loaded").GetProperty("tinyemb");
        Assert.Equal(["step", "sd_checkpoint", "sd_checkpoint_name", "shape", "vectors"], Keys(tinyemb));
        Assert.Equal(32, tinyemb.GetProperty("shape").GetInt32()); // emb_params [3, 32] (ext/README.md)
        Assert.Equal(3, tinyemb.GetProperty("vectors").GetInt32());

        foreach (var empty in new[] { "/sdapi/v1/hypernetworks", "/sdapi/v1/face-restorers", "/sdapi/v1/prompt-styles", "/sdapi/v1/sd-vae" })
        {
            var (status, list) = await server.GetAsync(empty);
            Assert.Equal(200, status);
            Assert.Equal(0, list.GetArrayLength());
        }
        var (_, scripts) = await server.GetAsync("/sdapi/v1/scripts");
        Assert.Equal(0, scripts.GetProperty("txt2img").GetArrayLength());
        Assert.Equal(0, scripts.GetProperty("img2img").GetArrayLength());
    }

    [Fact]
    public async Task ProgressMemoryAndFlagsWhenIdle()
    {
        await using var server = await TestServer.StartAsync();
        var (_, progress) = await server.GetAsync("/sdapi/v1/progress?skip_current_image=true");
        Assert.Equal(["progress", "eta_relative", "state", "current_image", "textinfo"], Keys(progress));
        Assert.Equal(0, progress.GetProperty("progress").GetDouble());
        Assert.Equal(["skipped", "interrupted", "stopping_generation", "job", "job_count", "job_timestamp", "job_no", "sampling_step", "sampling_steps"],
            Keys(progress.GetProperty("state")));
        Assert.Equal(0, progress.GetProperty("state").GetProperty("job_count").GetInt32());

        var (_, memory) = await server.GetAsync("/sdapi/v1/memory");
        Assert.True(memory.GetProperty("ram").GetProperty("total").GetDouble() > 0);
        Assert.True(memory.GetProperty("ram").GetProperty("used").GetDouble() > 0);
        Assert.Equal(JsonValueKind.Object, memory.GetProperty("cuda").ValueKind);

        var (_, flags) = await server.GetAsync("/sdapi/v1/cmd-flags");
        Assert.Equal(server.ModelsDir, flags.GetProperty("models_dir").GetString());

        foreach (var route in new[] { "/sdapi/v1/interrupt", "/sdapi/v1/skip", "/sdapi/v1/refresh-checkpoints", "/sdapi/v1/refresh-vae", "/sdapi/v1/refresh-loras" })
            Assert.Equal(200, (await server.PostAsync(route, new { })).Status);
    }

    [Fact]
    public async Task ErrorsHaveFastApiBodies()
    {
        await using var server = await TestServer.StartAsync();
        var (status, body) = await server.GetAsync("/sdapi/v1/no-such-route");
        Assert.Equal(404, status);
        Assert.Equal("Not Found", body.GetProperty("detail").GetString());

        (status, body) = await server.GetAsync("/sdapi/v1/txt2img");
        Assert.Equal(405, status);
        Assert.Equal("Method Not Allowed", body.GetProperty("detail").GetString());

        (status, body) = await server.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", steps = "many", sampler_name = "No Such Sampler" });
        Assert.Equal(422, status);
        var errors = body.GetProperty("detail").EnumerateArray().ToList();
        Assert.Contains(errors, e => e.GetProperty("loc")[1].GetString() == "steps" && e.GetProperty("type").GetString() == "type_error.integer");
        Assert.Contains(errors, e => e.GetProperty("loc")[1].GetString() == "sampler_name");

        (status, body) = await server.PostAsync("/sdapi/v1/txt2img", new { width = 4096, height = 4096, batch_size = 10, n_iter = 10 });
        Assert.Equal(422, status);
        Assert.Contains(body.GetProperty("detail").EnumerateArray(), e => e.GetProperty("loc")[1].GetString() == "width");
        Assert.Contains(body.GetProperty("detail").EnumerateArray(), e => e.GetProperty("loc")[1].GetString() == "n_iter");

        // Fields A1111 honours and this server cannot yet are refused, not silently ignored.
        (status, body) = await server.PostAsync("/sdapi/v1/txt2img", new { eta = 0.5, subseed_strength = 0.3, tiling = true });
        Assert.Equal(422, status);
        Assert.Equal(["eta", "subseed_strength", "tiling"],
            body.GetProperty("detail").EnumerateArray().Select(e => e.GetProperty("loc")[1].GetString()).Order(StringComparer.Ordinal));

        (status, body) = await server.PostAsync("/sdapi/v1/txt2img", "{not json");
        Assert.Equal(422, status);
        Assert.Equal("value_error.jsondecode", body.GetProperty("detail")[0].GetProperty("type").GetString());
    }

    [Fact]
    public async Task ThePageAndTheOpenApiDocumentAreServed()
    {
        await using var server = await TestServer.StartAsync();
        using var page = await server.Client.GetAsync("/");
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("<title>SharpDiffusion</title>", html);
        Assert.Contains("/v2/jobs", html);
        Assert.DoesNotContain("http://", html); // nothing fetched from elsewhere: works offline

        var (status, openApi) = await server.GetAsync("/openapi/v1.json");
        Assert.Equal(200, status);
        var paths = openApi.GetProperty("paths");
        foreach (var path in new[] { "/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/sdapi/v1/sd-models", "/sdapi/v1/options", "/sdapi/v1/extra-single-image", "/v2/jobs", "/v2/jobs/{id}" })
            Assert.True(paths.TryGetProperty(path, out _), path);
    }
}
