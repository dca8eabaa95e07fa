using System.Net;
using System.Text;

namespace SharpDiffusion.Server.Tests;

/// <summary>Basic auth on every route, and model names that cannot reach outside the models folder.</summary>
public class SafetyTests
{
    private static readonly string[] GetRoutes =
    [
        "/", "/openapi/v1.json", "/sdapi/v1/sd-models", "/sdapi/v1/sd-vae", "/sdapi/v1/samplers", "/sdapi/v1/schedulers",
        "/sdapi/v1/upscalers", "/sdapi/v1/latent-upscale-modes", "/sdapi/v1/loras", "/sdapi/v1/hypernetworks", "/sdapi/v1/embeddings",
        "/sdapi/v1/prompt-styles", "/sdapi/v1/face-restorers", "/sdapi/v1/options", "/sdapi/v1/memory", "/sdapi/v1/cmd-flags",
        "/sdapi/v1/scripts", "/sdapi/v1/progress", "/v2/jobs/0", "/sdapi/v1/no-such-route",
    ];

    private static readonly string[] PostRoutes =
    [
        "/sdapi/v1/txt2img", "/sdapi/v1/img2img", "/sdapi/v1/options", "/sdapi/v1/png-info", "/sdapi/v1/interrupt", "/sdapi/v1/skip",
        "/sdapi/v1/refresh-checkpoints", "/sdapi/v1/refresh-vae", "/sdapi/v1/refresh-loras", "/sdapi/v1/unload-checkpoint",
        "/sdapi/v1/reload-checkpoint", "/v2/jobs",
    ];

    [Fact]
    public async Task EveryRouteNeedsCredentialsWhenAuthIsOn()
    {
        await using var server = await TestServer.StartAsync(credentials: [("alice", "s3cret"), ("bob", "hunter2")]);
        foreach (var route in GetRoutes) await AssertUnauthorized(server.Client.GetAsync(route), route);
        foreach (var route in PostRoutes) await AssertUnauthorized(server.Client.PostAsync(route, Json("{}")), route);

        server.UseCredentials("alice", "wrong");
        await AssertUnauthorized(server.Client.GetAsync("/sdapi/v1/sd-models"), "wrong password");
        server.UseCredentials("bob", "s3cret");
        await AssertUnauthorized(server.Client.GetAsync("/sdapi/v1/sd-models"), "another user's password");

        server.UseCredentials("bob", "hunter2");
        foreach (var route in GetRoutes.Where(r => !r.Contains("no-such") && !r.StartsWith("/v2")))
        {
            using var response = await server.Client.GetAsync(route);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{route}: {response.StatusCode}");
        }
    }

    [Fact]
    public async Task WithoutAuthAnEmptyAuthorizationHeaderIsFine()
    {
        await using var server = await TestServer.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/sdapi/v1/sd-models");
        request.Headers.TryAddWithoutValidation("Authorization", "");
        using var response = await server.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task ModelNamesOutsideTheModelsFolderAreRefused()
    {
        await using var server = await TestServer.StartAsync();
        // A checkpoint that exists, outside the models folder: by absolute path, by ../, and through a symlink inside.
        var outside = Path.Combine(server.Root, "outside.safetensors");
        File.Copy(server.CheckpointPath, outside);
        File.CreateSymbolicLink(Path.Combine(server.ModelsDir, "Stable-diffusion", "linked.safetensors"), outside);
        Directory.CreateDirectory(Path.Combine(server.Root, "elsewhere"));
        File.Copy(server.CheckpointPath, Path.Combine(server.Root, "elsewhere", "deep.safetensors"));
        Directory.CreateSymbolicLink(Path.Combine(server.ModelsDir, "Stable-diffusion", "linkdir"), Path.Combine(server.Root, "elsewhere"));
        File.CreateSymbolicLink(Path.Combine(server.ModelsDir, "Lora", "escaped.safetensors"), outside);

        var (_, models) = await server.GetAsync("/sdapi/v1/sd-models");
        Assert.Equal(["tiny_sd1.safetensors"], models.EnumerateArray().Select(m => m.GetProperty("title").GetString()));
        var (_, loras) = await server.GetAsync("/sdapi/v1/loras");
        Assert.Equal(["tiny_sd1_lora"], loras.EnumerateArray().Select(m => m.GetProperty("name").GetString()));

        foreach (var name in new[] { outside, "../../outside.safetensors", "../../outside", "linked", "linked.safetensors", "linkdir/deep.safetensors",
                     "Stable-diffusion/../../outside.safetensors", "/etc/passwd" })
        {
            var (status, body) = await server.PostAsync("/sdapi/v1/options", new { sd_model_checkpoint = name });
            Assert.True(status == 404, $"{name}: {status}");
            Assert.Contains("not found", body.GetProperty("detail").GetString());
            (status, _) = await server.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", override_settings = new { sd_model_checkpoint = name } });
            Assert.True(status == 422, $"{name} in override_settings: {status}");
        }
        var (vaeStatus, _) = await server.PostAsync("/sdapi/v1/options", new { sd_vae = "../../outside.safetensors" });
        Assert.Equal(404, vaeStatus);
    }

    [Fact]
    public async Task InitImagesAreNeverFetchedFromUrls()
    {
        await using var server = await TestServer.StartAsync();
        var (status, body) = await server.PostAsync("/sdapi/v1/img2img", new { prompt = "x", init_images = new[] { "http://127.0.0.1:1/x.png" } });
        Assert.Equal(422, status);
        Assert.Equal("init_images", body.GetProperty("detail")[0].GetProperty("loc")[1].GetString());
    }

    private static StringContent Json(string text) => new(text, Encoding.UTF8, "application/json");

    private static async Task AssertUnauthorized(Task<HttpResponseMessage> call, string what)
    {
        using var response = await call;
        Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{what}: {response.StatusCode}");
        Assert.Equal("Basic", response.Headers.WwwAuthenticate.Single().Scheme);
    }
}
