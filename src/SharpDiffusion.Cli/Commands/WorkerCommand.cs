using System.CommandLine;
using System.Globalization;
using SharpDiffusion.Server;
using StackExchange.Redis;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>sharpdiffusion worker --queue redis://HOST:PORT --models-dir DIR</c>: runs the jobs that <c>serve --queue redis://</c>
/// puts in Redis, on this machine's models folder, until stopped (Ctrl+C or SIGTERM). Any number may run, anywhere.
/// </summary>
internal sealed class WorkerCommand : ICliCommand
{
    private readonly Option<string> _queue = new("--queue") { Description = "The Redis server the HTTP server queues jobs in: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (rediss:// for TLS)", Required = true };
    private readonly Option<string?> _modelsDir = new("--models-dir") { Description = "A1111 models folder holding the models the jobs name (default: the shipped models/ folder, else ./models)" };
    private readonly Option<string?> _name = new("--name") { Description = "This worker's name in the consumer group, unique per worker (default: host-pid)" };
    private readonly Option<string> _claimAfter = new("--claim-after") { Description = "Take over a job whose worker has been silent this long (e.g. 30s, 2m; default 30s)", DefaultValueFactory = _ => "30s" };
    private readonly Option<string> _resultTtl = new("--result-ttl") { Description = "Keep finished jobs' results in Redis this long (default 1h)", DefaultValueFactory = _ => "1h" };
    private readonly Option<string> _outputs = new("--outputs") { Description = "Folder for images saved on request (save_images)", DefaultValueFactory = _ => "outputs" };
    private readonly Option<string?> _tokenizer = new("--tokenizer") { Description = "CLIP vocabulary: vocab.json+merges.txt folder or bpe_simple_vocab_16e6.txt.gz" };

    public Command Create(CliContext context)
    {
        var command = new Command("worker", "Run the jobs of a 'serve --queue redis://...' server on this machine");
        foreach (var option in new Option[] { _queue, _modelsDir, _name, _claimAfter, _resultTtl, _outputs, _tokenizer }) command.Options.Add(option);
        command.SetAction(result => Run(context, result));
        return command;
    }

    private int Run(CliContext context, ParseResult args)
    {
        RedisAddress address;
        ServerOptions serverOptions;
        RedisWorkerOptions workerOptions;
        try
        {
            var queue = args.GetValue(_queue)!;
            address = RedisAddress.Parse(queue) ?? throw new ArgumentException($"--queue: a worker needs redis://HOST:PORT, not '{queue}'");
            var modelsDir = args.GetValue(_modelsDir) ?? Engine.Generation.ShippedModel.ModelsFolder() ?? "models";
            if (!Directory.Exists(modelsDir)) throw new ArgumentException($"--models-dir {modelsDir}: no such folder");
            var tokenizer = args.GetValue(_tokenizer);
            if (tokenizer != null && !File.Exists(tokenizer) && !Directory.Exists(tokenizer)) throw new ArgumentException($"--tokenizer {tokenizer}: no such file or folder");
            serverOptions = new ServerOptions { ModelsDir = modelsDir, OutputsDir = args.GetValue(_outputs)!, TokenizerPath = tokenizer };
            workerOptions = new RedisWorkerOptions
            {
                Name = args.GetValue(_name) ?? $"{Environment.MachineName}-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}",
                ClaimAfter = ParseDuration("--claim-after", args.GetValue(_claimAfter)!),
                ResultTtl = ParseDuration("--result-ttl", args.GetValue(_resultTtl)!),
            };
        }
        catch (ArgumentException e)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }

        ConnectionMultiplexer redis;
        try
        {
            redis = address.Connect();
        }
        catch (RedisConnectionException e)
        {
            context.Fail($"--queue {address}: cannot reach Redis ({e.FailureType})");
            return ExitCodes.Unavailable;
        }
        var catalog = new ModelCatalog(serverOptions.ModelsDir);
        using (redis)
        using (var backend = new GenerationServiceBackend(catalog, serverOptions.TokenizerPath))
        using (var stop = new CancellationTokenSource())
        {
            var server = new ServerContext(serverOptions, catalog, backend);
            var worker = new RedisJobWorker(redis, server, workerOptions);
            worker.Log += line => context.Error.WriteLine($"worker {workerOptions.Name}: {line}");
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                stop.Cancel();
            };
            using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, s =>
            {
                s.Cancel = true;
                stop.Cancel();
            });
            context.Error.WriteLine($"worker {workerOptions.Name}: taking jobs from {address} for {serverOptions.ModelsDir}");
            worker.RunAsync(stop.Token).GetAwaiter().GetResult();
        }
        return ExitCodes.Success;
    }

    /// <summary>"30s", "500ms", "2m", "1h" or a plain number of seconds.</summary>
    internal static TimeSpan ParseDuration(string option, string text)
    {
        var t = text.Trim().ToLowerInvariant();
        (string number, double scale) = t.EndsWith("ms", StringComparison.Ordinal) ? (t[..^2], 0.001)
            : t.EndsWith('s') ? (t[..^1], 1) : t.EndsWith('m') ? (t[..^1], 60) : t.EndsWith('h') ? (t[..^1], 3600) : (t, 1);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || value <= 0 || double.IsInfinity(value))
            throw new ArgumentException($"{option}: '{text}' is not a duration (e.g. 30s, 500ms, 2m, 1h)");
        return TimeSpan.FromSeconds(value * scale);
    }
}
