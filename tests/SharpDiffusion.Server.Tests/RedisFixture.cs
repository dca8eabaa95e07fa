using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using SharpDiffusion.Cli;
using StackExchange.Redis;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// A redis-server of its own (Debian's, /usr/bin/redis-server) on a free loopback port with a temp dir and no
/// persistence, killed at the end. A missing binary fails the test with a message that names it.
/// </summary>
internal sealed class RedisTestServer : IAsyncDisposable
{
    public const string Binary = "/usr/bin/redis-server";
    public const string MissingMessage = Binary + " is missing: the Redis queue tests need Debian's redis-server package (apt-get install redis-server; .ci/run installs it)";
    private readonly Process _process;
    private readonly string _dir;

    private RedisTestServer(Process process, string dir, int port, ConnectionMultiplexer connection, string? password)
    {
        _process = process;
        _dir = dir;
        Port = port;
        Connection = connection;
        Password = password;
    }

    public int Port { get; }
    /// <summary>The default user's password (<c>--requirepass</c>); null: none.</summary>
    public string? Password { get; }
    public string Url => Password == null ? $"redis://127.0.0.1:{Port}" : $"redis://:{Uri.EscapeDataString(Password)}@127.0.0.1:{Port}";
    /// <summary>For the tests' own look at the stream, hashes and counters.</summary>
    public ConnectionMultiplexer Connection { get; }
    public IDatabase Db => Connection.GetDatabase();

    public static async Task<RedisTestServer> StartAsync(string? password = null)
    {
        Assert.True(File.Exists(Binary), MissingMessage);
        var dir = Path.Combine(Path.GetTempPath(), "sdredis-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        int port = FreePort();
        var start = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no" })
            start.ArgumentList.Add(arg);
        if (password != null)
        {
            start.ArgumentList.Add("--requirepass");
            start.ArgumentList.Add(password);
        }
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                var options = ConfigurationOptions.Parse($"127.0.0.1:{port},abortConnect=true,connectTimeout=2000");
                options.Password = password;
                var connection = await ConnectionMultiplexer.ConnectAsync(options);
                return new RedisTestServer(process, dir, port, connection, password);
            }
            catch (RedisConnectionException) when (attempt < 50 && !process.HasExited)
            {
                await Task.Delay(100);
            }
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        if (!_process.HasExited) _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>A <c>sharpdiffusion worker</c> process (the built CLI), for the tests that kill one with SIGKILL.</summary>
internal sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly System.Text.StringBuilder _log = new();

    public WorkerProcess(string redisUrl, string modelsDir, string name, string claimAfter)
    {
        Name = name;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        start.ArgumentList.Add(typeof(CliApp).Assembly.Location);
        foreach (var arg in new[] { "worker", "--queue", redisUrl, "--models-dir", modelsDir, "--name", name, "--claim-after", claimAfter,
                     "--tokenizer", TestPaths.GoldenFile("clip"), "--outputs", Path.Combine(modelsDir, "..", "worker-outputs") })
            start.ArgumentList.Add(arg);
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Name { get; }
    public bool HasExited => _process.HasExited;

    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    /// <summary>SIGKILL (<c>kill -9</c>): no chance to acknowledge, release or clean up anything.</summary>
    public void Kill9()
    {
        using (var kill = Process.Start(new ProcessStartInfo("kill", ["-9", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false }))
            kill?.WaitForExit(10_000);
        if (!_process.WaitForExit(20_000)) _process.Kill(entireProcessTree: true);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(20_000);
        }
        _process.Dispose();
    }
}

/// <summary>A worker in this process over a models folder (the engine's backend), for the tests that kill none.</summary>
internal sealed class InProcessWorker : IAsyncDisposable
{
    private readonly ConnectionMultiplexer _redis;
    private readonly GenerationServiceBackend _backend;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _log = new();

    public InProcessWorker(string redisUrl, string modelsDir, string name, IImageGenerationBackend? backend = null, TimeSpan? claimAfter = null)
    {
        _redis = RedisAddress.Parse(redisUrl)!.Connect();
        var options = new ServerOptions { ModelsDir = modelsDir, OutputsDir = Path.Combine(modelsDir, "..", "worker-outputs"), TokenizerPath = TestPaths.GoldenFile("clip") };
        var catalog = new ModelCatalog(modelsDir, Path.Combine(modelsDir, "..", "worker-hashes.json"));
        _backend = new GenerationServiceBackend(catalog, options.TokenizerPath);
        var context = new ServerContext(options, catalog, backend ?? _backend);
        var worker = new RedisJobWorker(_redis, context, new RedisWorkerOptions { Name = name, ClaimAfter = claimAfter ?? TimeSpan.FromSeconds(30) });
        worker.Log += _log.Enqueue;
        _run = Task.Run(() => worker.RunAsync(_stop.Token));
    }

    public IReadOnlyCollection<string> Log => _log;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _run;
        _backend.Dispose();
        await _redis.DisposeAsync();
        _stop.Dispose();
    }
}
