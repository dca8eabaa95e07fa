using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace SharpDiffusion.Server;

/// <summary>The server's shared state (models folder, options, the backend and its queue) and small HTTP helpers.</summary>
public sealed class ServerContext
{
    private readonly Lazy<IJobQueue> _queue;

    /// <summary><paramref name="queue"/> makes the job queue on first use (default: the in-process <see cref="JobQueue"/>);
    /// a Redis worker, which only parses requests and builds responses, never makes one.</summary>
    public ServerContext(ServerOptions options, ModelCatalog catalog, IImageGenerationBackend backend, Func<ServerContext, IJobQueue>? queue = null)
    {
        Options = options;
        Catalog = catalog;
        Settings = new(catalog);
        Backend = backend;
        _queue = new(() => queue?.Invoke(this) ?? new JobQueue(backend, options.MaxQueuedJobs));
    }

    public ServerOptions Options { get; }
    public ModelCatalog Catalog { get; }
    public ServerSettings Settings { get; }
    public IImageGenerationBackend Backend { get; }
    public IJobQueue Queue => _queue.Value;

    /// <summary>A1111's /sdapi/v1/progress for the running job (zeros when idle).</summary>
    public async Task<Dictionary<string, object?>> ProgressResponseAsync(bool skipCurrentImage = false)
    {
        var job = await Queue.CurrentAsync();
        if (job == null || job.Progress is not { } p)
            return new() { ["progress"] = 0.0, ["eta_relative"] = 0.0, ["state"] = State(job, null), ["current_image"] = null, ["textinfo"] = null };
        double fraction = Math.Max(job.Fraction, 0.01);
        double elapsed = (DateTimeOffset.UtcNow - (job.StartedAt ?? job.CreatedAt)).TotalSeconds;
        return new()
        {
            ["progress"] = fraction,
            ["eta_relative"] = elapsed / fraction - elapsed,
            ["state"] = State(job, p),
            ["current_image"] = skipCurrentImage || p.PreviewRgb == null ? null
                : System.Convert.ToBase64String(Png.PngEncoder.Encode(p.PreviewRgb, p.PreviewWidth, p.PreviewHeight, level: System.IO.Compression.CompressionLevel.Fastest)),
            ["textinfo"] = null,
        };
    }

    /// <summary>A1111's shared.state.dict().</summary>
    public static Dictionary<string, object?> State(ServerJob? job, ImageJobProgress? p) => new()
    {
        ["skipped"] = job?.Control.SkipRequested ?? false,
        ["interrupted"] = job?.Control.IsInterrupted ?? false,
        ["stopping_generation"] = false,
        ["job"] = job == null ? "" : "scripts_" + job.Kind,
        ["job_count"] = job == null ? 0 : p?.BatchCount ?? job.Job.Iterations,
        ["job_timestamp"] = (job?.StartedAt ?? DateTimeOffset.UtcNow).ToLocalTime().ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture),
        ["job_no"] = p?.BatchIndex ?? 0,
        ["sampling_step"] = p?.Step ?? 0,
        ["sampling_steps"] = p?.Steps ?? 0,
    };

    /// <summary>The body as JSON, or a FastAPI-style 422 when it is not JSON.</summary>
    public static async Task<(JsonElement Json, IResult? Error)> ReadJsonAsync(HttpRequest request)
    {
        try
        {
            using var document = await JsonDocument.ParseAsync(request.Body);
            return (document.RootElement.Clone(), null);
        }
        catch (JsonException e)
        {
            return (default, Unprocessable([new ValidationError(["body", 0], "JSON decode error: " + e.Message, "value_error.jsondecode")]));
        }
    }

    public static IResult Unprocessable(IEnumerable<ValidationError> errors) =>
        Results.Json(new { detail = errors.Select(e => new { loc = e.Loc, msg = e.Msg, type = e.Type }).ToList() }, statusCode: 422);

    /// <summary>Raw base64 or a data: URI (as A1111's decode_base64_to_image). URLs are never fetched.</summary>
    public static bool TryDecodeBase64Image(string text, out byte[] bytes)
    {
        var data = text.Trim();
        if (data.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            int comma = data.IndexOf(',');
            data = comma < 0 ? "" : data[(comma + 1)..];
        }
        bytes = [];
        if (data.Length == 0) return false;
        try
        {
            bytes = System.Convert.FromBase64String(data);
            return bytes.Length > 0;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
