using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Formats;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server;

/// <summary>
/// A1111's <c>/sdapi/v1</c> routes that need no generation: lists of models and networks, options, png-info,
/// progress/interrupt/skip, memory and flags. Field names and shapes follow A1111 1.9/1.10's modules/api.
/// </summary>
internal static class A1111InfoRoutes
{
    /// <summary>A1111's aliases and options per sampler (options are strings: pydantic's dict[str, str]).</summary>
    private static readonly Dictionary<string, (string[] Aliases, Dictionary<string, string> Options)> SamplerDetails = new()
    {
        ["Euler a"] = (["k_euler_a", "k_euler_ancestral"], new() { ["uses_ensd"] = "True" }),
        ["Euler"] = (["k_euler"], new()),
        ["Heun"] = (["k_heun"], new() { ["second_order"] = "True" }),
        ["DPM2"] = (["k_dpm_2"], new() { ["discard_next_to_last_sigma"] = "True", ["second_order"] = "True" }),
        ["DPM2 a"] = (["k_dpm_2_a"], new() { ["discard_next_to_last_sigma"] = "True", ["uses_ensd"] = "True", ["second_order"] = "True" }),
        ["LMS"] = (["k_lms"], new()),
        ["DPM++ 2M"] = (["k_dpmpp_2m"], new()),
        ["DPM++ 2S a"] = (["k_dpmpp_2s_a"], new() { ["uses_ensd"] = "True", ["second_order"] = "True" }),
        ["DDIM"] = (["ddim"], new()),
    };

    public static void Map(IEndpointRouteBuilder api, ServerContext server)
    {
        var catalog = server.Catalog;
        api.MapGet("/sd-models", () => catalog.Checkpoints().Select(c =>
        {
            var hashes = catalog.CachedHashes(c.FullPath);
            return new Dictionary<string, object?>
            {
                ["title"] = catalog.Title(c),
                ["model_name"] = c.ModelName,
                ["hash"] = hashes?.Short,
                ["sha256"] = hashes?.Sha256,
                ["filename"] = c.FullPath,
                ["config"] = c.ConfigPath,
            };
        }).ToList());

        api.MapGet("/sd-vae", () => catalog.Vaes().Select(v => new Dictionary<string, object?> { ["model_name"] = v.Key, ["filename"] = v.Value }).ToList());

        api.MapGet("/samplers", () => SamplerRegistry.Names.Select((name, i) =>
        {
            var (aliases, options) = SamplerDetails.TryGetValue(name, out var d) ? d : ([SamplerRegistry.Aliases[i]], new());
            return new Dictionary<string, object?> { ["name"] = name, ["aliases"] = aliases, ["options"] = options };
        }).ToList());

        // A1111 1.10 sd_schedulers: the rho defaults and the schedules that read the model's own sigmas.
        api.MapGet("/schedulers", () => ScheduleTypes.All.Select(s => Scheduler(s.Name, s.Label,
            s.Name switch { "karras" => 7.0, "polyexponential" => 1.0, _ => null },
            needInnerModel: s.Name is "sgm_uniform" or "simple" or "normal" or "ddim")).ToList());

        // A1111's built-in pixel upscalers, then the models folder's ESRGAN files (model_name: the folder's kind, scale 4 as A1111 lists them).
        api.MapGet("/upscalers", () => new[] { "None", "Lanczos", "Nearest" }.Select(name => new Dictionary<string, object?>
        {
            ["name"] = name, ["model_name"] = null, ["model_path"] = null, ["model_url"] = null, ["scale"] = 4,
        }).Concat(catalog.Upscalers().Select(u => new Dictionary<string, object?>
        {
            ["name"] = u.Name, ["model_name"] = UpscalerKind(catalog, u.Path), ["model_path"] = u.Path, ["model_url"] = null, ["scale"] = 4,
        })).ToList());

        // The latent modes the hires. fix runs (A1111 also has antialiased/bicubic/nearest-exact ones, refused with a 422).
        api.MapGet("/latent-upscale-modes", () => new[] { "Latent", "Latent (nearest)" }.Select(name => new Dictionary<string, object?> { ["name"] = name }).ToList());

        api.MapGet("/loras", () => catalog.Loras().Select(l =>
        {
            var metadata = ReadMetadata(l.Value);
            var alias = metadata.TryGetValue("ss_output_name", out var output) && output is string s && s != "None" ? s : l.Key;
            return new Dictionary<string, object?> { ["name"] = l.Key, ["alias"] = alias, ["path"] = l.Value, ["metadata"] = metadata };
        }).ToList());

        api.MapGet("/hypernetworks", () => catalog.Hypernetworks().Select(h => new Dictionary<string, object?> { ["name"] = h.Key, ["path"] = h.Value }).ToList());

        api.MapGet("/embeddings", async (CancellationToken cancel) =>
        {
            var checkpoint = server.Settings.Checkpoint;
            if (checkpoint == null) return Results.Json(new { loaded = new Dictionary<string, object>(), skipped = new Dictionary<string, object>() });
            var listing = await server.Backend.ListEmbeddingsAsync(checkpoint, cancel);
            static Dictionary<string, object?> Convert(IEnumerable<EmbeddingInfo> list) => list.ToDictionary(e => e.Name, e => (object?)new Dictionary<string, object?>
            {
                ["step"] = e.Step, ["sd_checkpoint"] = e.SdCheckpoint, ["sd_checkpoint_name"] = e.SdCheckpointName, ["shape"] = e.Shape, ["vectors"] = e.Vectors,
            });
            return Results.Json(new Dictionary<string, object?> { ["loaded"] = Convert(listing.Loaded), ["skipped"] = Convert(listing.Skipped) });
        });

        api.MapGet("/prompt-styles", () => Array.Empty<object>());
        api.MapGet("/face-restorers", () => Array.Empty<object>());
        api.MapGet("/realesrgan-models", () => Array.Empty<object>());
        api.MapGet("/scripts", () => new Dictionary<string, object> { ["txt2img"] = Array.Empty<string>(), ["img2img"] = Array.Empty<string>() });
        api.MapGet("/script-info", () => Array.Empty<object>());
        api.MapGet("/extensions", () => Array.Empty<object>());

        api.MapGet("/options", () => server.Settings.Snapshot());
        api.MapPost("/options", async (HttpRequest request) =>
        {
            var body = await ServerContext.ReadJsonAsync(request);
            if (body.Error != null) return body.Error;
            if (server.Settings.Apply(body.Json) is { } problem)
                return problem.Message.Contains("not found", StringComparison.Ordinal)
                    ? Results.Json(new { detail = problem.Message }, statusCode: 404)
                    : ServerContext.Unprocessable([new ValidationError(["body", problem.Field], problem.Message, "value_error")]);
            return JsonNull();
        });

        api.MapGet("/cmd-flags", () => new Dictionary<string, object?>
        {
            ["models_dir"] = server.Options.ModelsDir,
            ["listen"] = server.Options.Listen,
            ["api"] = true,
            ["api_auth"] = server.Options.Credentials.Count > 0 ? "<set>" : null,
            ["cors_allow_origins"] = server.Options.CorsAllowOrigins.Count > 0 ? string.Join(',', server.Options.CorsAllowOrigins) : null,
            ["outputs"] = server.Options.OutputsDir,
            ["nowebui"] = false,
        });

        api.MapGet("/memory", () =>
        {
            var process = System.Diagnostics.Process.GetCurrentProcess();
            long used = process.WorkingSet64;
            long total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
            return new Dictionary<string, object?>
            {
                ["ram"] = new Dictionary<string, object?> { ["free"] = (double)Math.Max(0, total - used), ["used"] = (double)used, ["total"] = (double)total },
                ["cuda"] = new Dictionary<string, object?> { ["error"] = "unavailable" },
            };
        });

        api.MapPost("/png-info", async (HttpRequest request) =>
        {
            var body = await ServerContext.ReadJsonAsync(request);
            if (body.Error != null) return body.Error;
            var reader = new RequestReader(body.Json);
            var image = reader.NullableString("image");
            if (image == null) reader.Invalid("image", "field required");
            if (reader.Errors.Count > 0) return ServerContext.Unprocessable(reader.Errors);
            if (!ServerContext.TryDecodeBase64Image(image!, out var bytes))
                return ServerContext.Unprocessable([new ValidationError(["body", "image"], "not base64 image data", "value_error")]);
            return Results.Json(PngInfo(bytes));
        });

        api.MapGet("/progress", (bool? skip_current_image) => server.ProgressResponseAsync(skip_current_image ?? false));
        api.MapPost("/interrupt", async () =>
        {
            (await server.Queue.CurrentAsync())?.Control.Interrupt();
            return new Dictionary<string, object>();
        });
        api.MapPost("/skip", async () =>
        {
            (await server.Queue.CurrentAsync())?.Control.Skip();
            return JsonNull();
        });

        api.MapPost("/refresh-checkpoints", () => JsonNull()); // listings are read from disk on every call
        api.MapPost("/refresh-vae", () => JsonNull());
        api.MapPost("/refresh-loras", () => JsonNull());
        api.MapPost("/refresh-embeddings", () => JsonNull());
        api.MapPost("/unload-checkpoint", () =>
        {
            server.Backend.Unload();
            return new Dictionary<string, object>();
        });
        api.MapPost("/reload-checkpoint", () => new Dictionary<string, object>()); // the next job loads the selected checkpoint
        ExtrasRoutes.Map(api, server);
    }

    /// <summary>A1111's model_name of an upscaler: "RealESRGAN" for files under RealESRGAN/, else "ESRGAN".</summary>
    private static string UpscalerKind(ModelCatalog catalog, string path) =>
        Path.GetRelativePath(catalog.Folder.Root, path).StartsWith("RealESRGAN" + Path.DirectorySeparatorChar, StringComparison.Ordinal) ? "RealESRGAN" : "ESRGAN";

    /// <summary>FastAPI's body for a handler that returns None.</summary>
    private static IResult JsonNull() => Results.Content("null", "application/json");

    private static Dictionary<string, object?> Scheduler(string name, string label, double? rho, bool needInnerModel) => new()
    {
        ["name"] = name, ["label"] = label, ["aliases"] = null, ["default_rho"] = rho ?? -1.0, ["need_inner_model"] = needInnerModel,
    };

    /// <summary>A LoRA's safetensors metadata; kohya's JSON-valued ss_ fields are parsed, as A1111 does.</summary>
    private static Dictionary<string, object?> ReadMetadata(string path)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (!path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return result;
        try
        {
            using var file = ModelFileReader.Open(path);
            foreach (var (key, value) in file.Metadata)
            {
                object? parsed = value;
                if (value.StartsWith('{') || value.StartsWith('['))
                {
                    try { parsed = JsonSerializer.Deserialize<JsonElement>(value); } catch (JsonException) { }
                }
                result[key] = parsed;
            }
        }
        catch (Exception e) when (e is InvalidModelFileException or IOException) { }
        return result;
    }

    /// <summary>A1111's png-info answer: the parameters text, the other text chunks, and the parsed parameters.</summary>
    internal static Dictionary<string, object?> PngInfo(byte[] image)
    {
        IReadOnlyList<PngText> texts;
        try
        {
            texts = PngTextChunks.Read(image);
        }
        catch (PngFormatException)
        {
            return new() { ["info"] = "", ["items"] = new Dictionary<string, object?>(), ["parameters"] = new Dictionary<string, object?>() };
        }
        var info = PngTextChunks.Get(texts, A1111Infotext.PngKeyword) ?? "";
        var items = texts.Where(t => t.Keyword != A1111Infotext.PngKeyword).GroupBy(t => t.Keyword).ToDictionary(g => g.Key, g => (object?)g.Last().Text);
        var parameters = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (info.Length > 0)
        {
            var parsed = A1111Infotext.Parse(info);
            parameters["Prompt"] = parsed.Prompt;
            parameters["Negative prompt"] = parsed.NegativePrompt;
            foreach (var (key, value) in parsed.Parameters)
            {
                if (key == "Size" && parsed.Size is { } size)
                {
                    parameters["Size-1"] = size.Width.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    parameters["Size-2"] = size.Height.ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
                else parameters[key] = value;
            }
        }
        return new() { ["info"] = info, ["items"] = items, ["parameters"] = parameters };
    }
}
