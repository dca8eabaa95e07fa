namespace SharpDiffusion.Server;

/// <summary>What <c>sharpdiffusion serve</c> was told: where the models are, where to listen, who may call it.</summary>
public sealed record ServerOptions
{
    /// <summary>An A1111 models folder: Stable-diffusion/, VAE/, Lora/, LyCORIS/, embeddings/, hypernetworks/.</summary>
    public required string ModelsDir { get; init; }

    /// <summary>host:port; loopback unless the user asks for more. Port 0 picks a free port (tests).</summary>
    public string Listen { get; init; } = "127.0.0.1:7860";

    /// <summary>HTTP Basic users; empty means no authentication.</summary>
    public IReadOnlyList<(string User, string Password)> Credentials { get; init; } = [];

    /// <summary>Origins allowed by CORS (browser front-ends on another origin); empty means none.</summary>
    public IReadOnlyList<string> CorsAllowOrigins { get; init; } = [];

    /// <summary>Where images are saved when a request asks for it (save_images) and where job results are kept.</summary>
    public string OutputsDir { get; init; } = "outputs";

    /// <summary>The CLIP vocabulary (file or folder), when it is not found in the usual places.</summary>
    public string? TokenizerPath { get; init; }

    /// <summary>The hash cache file (default: the user's cache, shared with the CLI).</summary>
    public string? HashCacheFile { get; init; }

    /// <summary>"memory" (jobs run in this process) or "redis://HOST:PORT" (jobs go to a Redis stream that
    /// <c>sharpdiffusion worker</c> processes read; this server loads no model for them).</summary>
    public string Queue { get; init; } = "memory";

    /// <summary>How long a Redis job's result and state are kept after it finishes.</summary>
    public TimeSpan ResultTtl { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Jobs waiting beyond this many are refused with 503 and Retry-After.</summary>
    public int MaxQueuedJobs { get; init; } = 64;

    /// <summary>Largest width x height accepted (a clear 422 beyond).</summary>
    public long MaxPixels { get; init; } = 2048L * 2048;

    public int MaxSteps { get; init; } = 150;

    /// <summary>Largest batch_size x n_iter accepted.</summary>
    public int MaxImagesPerRequest { get; init; } = 16;

    /// <summary>Parses "user:pass[,user2:pass2]" (A1111's --api-auth).</summary>
    public static IReadOnlyList<(string User, string Password)> ParseCredentials(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return [];
        var list = new List<(string, string)>();
        foreach (var pair in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = pair.IndexOf(':');
            if (colon <= 0 || colon == pair.Length - 1)
                throw new ArgumentException($"--api-auth: '{pair}' is not user:password");
            list.Add((pair[..colon], pair[(colon + 1)..]));
        }
        return list;
    }

    /// <summary>Splits host:port; "[::1]:7860" and "localhost:7860" are accepted.</summary>
    public static (string Host, int Port) ParseListen(string text)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text[(colon + 1)..], out int port) || port is < 0 or > 65535)
            throw new ArgumentException($"--listen: '{text}' is not host:port (e.g. 127.0.0.1:7860)");
        return (text[..colon].Trim('[', ']'), port);
    }
}
