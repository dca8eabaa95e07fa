using System.CommandLine;
using Microsoft.Extensions.Hosting;
using SharpDiffusion.Server;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion serve --models-dir DIR</c>: an A1111-compatible HTTP API (<c>/sdapi/v1</c>), a job API
/// (<c>/v2/jobs</c>), a web page at <c>/</c> and an OpenAPI document at <c>/openapi/v1.json</c>. Loopback only unless
/// <c>--listen</c> says otherwise.
/// </summary>
internal sealed class ServeCommand : ICliCommand
{
    private readonly Option<string?> _modelsDir = new("--models-dir") { Description = "A1111 models folder: Stable-diffusion/, VAE/, Lora/, LyCORIS/, embeddings/, hypernetworks/ (default: the shipped models/ folder with sharp-emoji, else ./models)" };
    private readonly Option<string> _listen = new("--listen") { Description = "host:port to listen on (default 127.0.0.1:7860; 0.0.0.0:7860 opens it to the network)", DefaultValueFactory = _ => "127.0.0.1:7860" };
    private readonly Option<string?> _apiAuth = new("--api-auth") { Description = "HTTP Basic credentials user:pass[,user2:pass2]: required on every route" };
    private readonly Option<string?> _cors = new("--cors-allow-origins") { Description = "Comma-separated origins allowed to call the API from a browser" };
    private readonly Option<string> _outputs = new("--outputs") { Description = "Folder for images saved on request (save_images)", DefaultValueFactory = _ => "outputs" };
    private readonly Option<string?> _tokenizer = new("--tokenizer") { Description = "CLIP vocabulary: vocab.json+merges.txt folder or bpe_simple_vocab_16e6.txt.gz" };
    private readonly Option<int> _maxQueue = new("--max-queue") { Description = "Jobs that may wait; more are answered 503 (default 64)", DefaultValueFactory = _ => 64 };
    private readonly Option<string> _queue = new("--queue") { Description = "memory (jobs run in this process) or redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS; jobs go to Redis; 'sharpdiffusion worker' processes run them)", DefaultValueFactory = _ => "memory" };

    public Command Create(CliContext context)
    {
        var command = new Command("serve", "Serve an A1111-compatible API, a job API and a web page");
        foreach (var option in new Option[] { _modelsDir, _listen, _apiAuth, _cors, _outputs, _tokenizer, _maxQueue, _queue }) command.Options.Add(option);
        command.SetAction(result => Run(context, result));
        return command;
    }

    private int Run(CliContext context, ParseResult args)
    {
        ServerOptions options;
        try
        {
            var modelsDir = args.GetValue(_modelsDir) ?? Engine.Generation.ShippedModel.ModelsFolder() ?? "models";
            if (!Directory.Exists(modelsDir)) throw new ArgumentException($"--models-dir {modelsDir}: no such folder");
            var tokenizer = args.GetValue(_tokenizer);
            if (tokenizer != null && !File.Exists(tokenizer) && !Directory.Exists(tokenizer)) throw new ArgumentException($"--tokenizer {tokenizer}: no such file or folder");
            if (args.GetValue(_maxQueue) < 1) throw new ArgumentException("--max-queue must be at least 1");
            var queue = args.GetValue(_queue)!;
            RedisAddress.Parse(queue);
            var listen = args.GetValue(_listen)!;
            var (host, _) = ServerOptions.ParseListen(listen);
            if (host != "localhost" && !System.Net.IPAddress.TryParse(host, out _)) throw new ArgumentException($"--listen: '{host}' is not an IP address or localhost");
            options = new ServerOptions
            {
                ModelsDir = modelsDir,
                Listen = listen,
                Credentials = ServerOptions.ParseCredentials(args.GetValue(_apiAuth)),
                CorsAllowOrigins = (args.GetValue(_cors) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                OutputsDir = args.GetValue(_outputs)!,
                TokenizerPath = tokenizer,
                MaxQueuedJobs = args.GetValue(_maxQueue),
                Queue = queue,
            };
        }
        catch (ArgumentException e)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }

        Microsoft.AspNetCore.Builder.WebApplication app;
        try
        {
            app = SdServer.Build(options);
        }
        catch (StackExchange.Redis.RedisConnectionException e)
        {
            context.Fail($"--queue {RedisAddress.Masked(options.Queue)}: cannot reach Redis ({e.FailureType})");
            return ExitCodes.Unavailable;
        }
        try
        {
            app.Start();
        }
        catch (IOException e)
        {
            context.Fail($"cannot listen on {options.Listen}: {e.Message}");
            return ExitCodes.Usage;
        }
        foreach (var url in app.Urls) context.Error.WriteLine($"serving on {url} (API {url}/sdapi/v1, page {url}/, OpenAPI {url}/openapi/v1.json){(options.Credentials.Count > 0 ? ", Basic auth on" : "")}{(options.Queue != "memory" ? $", jobs to {RedisAddress.Masked(options.Queue)}" : "")}");
        app.WaitForShutdown();
        return ExitCodes.Success;
    }
}
