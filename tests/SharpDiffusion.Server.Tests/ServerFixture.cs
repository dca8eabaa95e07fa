using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using SharpDiffusion.Server;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// A models folder in a temp dir (the tiny SD1 checkpoint and its config, the tiny LoRA and embedding) and a server
/// on a free loopback port over it, with its own hash cache.
/// </summary>
internal sealed class TestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestServer(string root, WebApplication app, HttpClient client)
    {
        Root = root;
        _app = app;
        Client = client;
    }

    public string Root { get; }
    public string ModelsDir => Path.Combine(Root, "models");
    public string CheckpointPath => Path.Combine(ModelsDir, "Stable-diffusion", "tiny_sd1.safetensors");
    public HttpClient Client { get; }

    /// <summary>The server's shared state (its queue), for tests that must know when a request has been queued.</summary>
    public ServerContext Context => _app.Services.GetRequiredService<ServerContext>();

    /// <param name="backendFactory">Makes the backend from the server's options (a wrapper around the real engine).</param>
    public static async Task<TestServer> StartAsync(IReadOnlyList<(string, string)>? credentials = null, IImageGenerationBackend? backend = null,
        int maxQueue = 64, bool withModels = true, Func<ServerOptions, IImageGenerationBackend>? backendFactory = null, string queue = "memory")
    {
        var root = Path.Combine(Path.GetTempPath(), "sdserve-" + Guid.NewGuid().ToString("N")[..12]);
        var models = Path.Combine(root, "models");
        Directory.CreateDirectory(Path.Combine(models, "Stable-diffusion"));
        if (withModels)
        {
            File.Copy(TestPaths.GoldenFile("tiny_sd1.safetensors"), Path.Combine(models, "Stable-diffusion", "tiny_sd1.safetensors"));
            File.Copy(TestPaths.GoldenFile("tiny_sd1.config.json"), Path.Combine(models, "Stable-diffusion", "tiny_sd1.config.json"));
            Directory.CreateDirectory(Path.Combine(models, "Lora"));
            File.Copy(TestPaths.GoldenFile("ext/tiny_sd1_lora.safetensors"), Path.Combine(models, "Lora", "tiny_sd1_lora.safetensors"));
            Directory.CreateDirectory(Path.Combine(models, "embeddings"));
            File.Copy(TestPaths.GoldenFile("ext/tiny_sd1_ti_tinyemb.safetensors"), Path.Combine(models, "embeddings", "tinyemb.safetensors"));
        }
        var options = new ServerOptions
        {
            ModelsDir = models,
            Listen = "127.0.0.1:0",
            Credentials = credentials ?? [],
            OutputsDir = Path.Combine(root, "outputs"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
            HashCacheFile = Path.Combine(root, "hashes.json"),
            MaxQueuedJobs = maxQueue,
            Queue = queue,
        };
        var app = SdServer.Build(options, backend ?? backendFactory?.Invoke(options));
        await app.StartAsync();
        var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(5) };
        return new TestServer(root, app, client);
    }

    public void UseCredentials(string user, string password) =>
        Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));

    public async Task<(int Status, JsonElement Json)> GetAsync(string path)
    {
        using var response = await Client.GetAsync(path);
        return ((int)response.StatusCode, await ReadAsync(response));
    }

    public async Task<(int Status, JsonElement Json)> PostAsync(string path, object? body)
    {
        using var content = new StringContent(body is string text ? text : JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");
        using var response = await Client.PostAsync(path, content);
        return ((int)response.StatusCode, await ReadAsync(response));
    }

    private static async Task<JsonElement> ReadAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
