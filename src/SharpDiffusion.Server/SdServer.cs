using System.Net;
using System.Reflection;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace SharpDiffusion.Server;

/// <summary>
/// Builds the HTTP server: A1111's <c>/sdapi/v1</c>, the job API (<c>/v2/jobs</c>), the web page at <c>/</c> and the
/// OpenAPI document at <c>/openapi/v1.json</c>, behind optional Basic authentication and CORS.
/// </summary>
public static class SdServer
{
    /// <summary>The application, not started. <paramref name="backend"/> defaults to the engine adapter.</summary>
    public static WebApplication Build(ServerOptions options, IImageGenerationBackend? backend = null, Action<ILoggingBuilder>? logging = null)
    {
        var (host, port) = ServerOptions.ParseListen(options.Listen);
        var catalog = new ModelCatalog(options.ModelsDir, options.HashCacheFile);
        bool ownsBackend = backend == null;
        backend ??= new GenerationServiceBackend(catalog, options.TokenizerPath);
        // With a Redis queue the backend only answers /embeddings (loaded on demand); the workers generate.
        var redis = RedisAddress.Parse(options.Queue)?.Connect();
        var server = new ServerContext(options, catalog, backend, redis == null ? null : s => new RedisJobQueue(redis, s, options.ResultTtl));
        _ = server.Queue; // made now: a Redis queue creates its consumer group before the server answers

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(SdServer).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = 64L * 1024 * 1024; // a few base64 init images
            if (host is "localhost") kestrel.ListenLocalhost(port);
            else kestrel.Listen(IPAddress.Parse(host), port);
        });
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            json.SerializerOptions.PropertyNamingPolicy = null; // A1111's snake_case names are written as they are
            json.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        });
        builder.Services.AddOpenApi();
        if (options.CorsAllowOrigins.Count > 0)
            builder.Services.AddCors(cors => cors.AddDefaultPolicy(p => p.WithOrigins([.. options.CorsAllowOrigins]).AllowAnyHeader().AllowAnyMethod()));
        builder.Services.AddSingleton(server);

        var app = builder.Build();
        app.UseExceptionHandler(errors => errors.Run(async context =>
        {
            var error = context.Features.Get<IExceptionHandlerFeature>()?.Error;
            context.Response.StatusCode = error is BadHttpRequestException bad ? bad.StatusCode : StatusCodes.Status500InternalServerError;
            await context.Response.WriteAsJsonAsync(new { error = error?.GetType().Name, detail = "", body = "", errors = error?.Message });
        }));
        if (options.CorsAllowOrigins.Count > 0) app.UseCors();
        app.Use(BasicAuthentication.Middleware(options.Credentials));
        // FastAPI's bodies for unknown routes and methods: {"detail": "Not Found"} / {"detail": "Method Not Allowed"}.
        app.UseStatusCodePages(async status =>
        {
            var response = status.HttpContext.Response;
            if (response.HasStarted || response.ContentLength > 0) return;
            var detail = response.StatusCode switch { 404 => "Not Found", 405 => "Method Not Allowed", var code => ReasonPhrases.GetReasonPhrase(code) };
            await response.WriteAsJsonAsync(new { detail });
        });

        app.MapOpenApi();
        app.MapGet("/", () => Results.Content(IndexPage.Value, "text/html; charset=utf-8")).ExcludeFromDescription();
        var api = app.MapGroup("/sdapi/v1");
        A1111InfoRoutes.Map(api, server);
        GenerationRoutes.Map(app, server);
        // sd-webui-controlnet's own routes (clients ask them before sending alwayson_scripts.controlnet).
        var controlNet = app.MapGroup("/controlnet");
        controlNet.MapGet("/version", () => new Dictionary<string, object> { ["version"] = 2 });
        controlNet.MapGet("/model_list", () => new Dictionary<string, object> { ["model_list"] = server.Catalog.ControlNetTitles() });
        controlNet.MapGet("/module_list", () => new Dictionary<string, object> { ["module_list"] = ControlNetArgs.Modules });
        app.Lifetime.ApplicationStopping.Register(() => server.Queue.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(30)));
        if (ownsBackend && backend is IDisposable disposable) app.Lifetime.ApplicationStopped.Register(disposable.Dispose);
        if (redis != null) app.Lifetime.ApplicationStopped.Register(redis.Dispose);
        return app;
    }

    private static readonly Lazy<string> IndexPage = new(() =>
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("SharpDiffusion.Server.index.html")
            ?? throw new InvalidOperationException("the web page is missing from the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });
}
