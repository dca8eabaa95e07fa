using SharpDiffusion.Bench;

// Benchmarks print figures; nothing here is asserted. Usage: dotnet run -c Release --project bench/SharpDiffusion.Bench -- NAME [args]
var benchmarks = new Dictionary<string, (string Help, Action<string[]> Run)>(StringComparer.OrdinalIgnoreCase)
{
    ["headers"] = ("open 100 sparse SD1.5-layout safetensors files (header-only classification speed) [files=100] [runs=5]",
        a => SafetensorsHeaderBenchmark.HeaderBenchmark(a)),
    ["merge"] = ("merge two generated 2 GB fp16 SD1.5-layout checkpoints (MB/s, peak RSS)", _ => MergeBenchmark.Run(Console.Out)),
    ["hash"] = ("hash a 2 GB file cold then warm (MB/s) [path]", a => HashBenchmark.Run(Console.Out, a.Length > 0 ? a[0] : null)),
};

if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var bench))
{
    Console.WriteLine("benchmarks:");
    foreach (var (name, (help, _)) in benchmarks) Console.WriteLine($"  {name,-10} {help}");
    return args.Length == 0 ? 0 : 2;
}

bench.Run(args[1..]);
return 0;
