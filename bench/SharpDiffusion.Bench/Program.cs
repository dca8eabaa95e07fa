using SharpDiffusion.Bench;

// Benchmarks print figures; nothing here is asserted. Usage: dotnet run -c Release --project bench/SharpDiffusion.Bench -- NAME [args]
var benchmarks = new Dictionary<string, (string Help, Action<string[]> Run)>(StringComparer.OrdinalIgnoreCase)
{
    ["headers"] = ("open 100 sparse SD1.5-layout safetensors files (header-only classification speed) [files=100] [runs=5]",
        a => SafetensorsHeaderBenchmark.HeaderBenchmark(a)),
    ["merge"] = ("merge two generated 2 GB fp16 SD1.5-layout checkpoints, cold then warm (MB/s, peak RSS) [warm-runs=1]",
        a => MergeBenchmark.Run(Console.Out, a.Length > 0 ? int.Parse(a[0], System.Globalization.CultureInfo.InvariantCulture) : 1)),
    ["hash"] = ("hash a 2 GB file cold then warm (MB/s) [path]", a => HashBenchmark.Run(Console.Out, a.Length > 0 ? a[0] : null)),
    ["unet"] = ("full-size SD1.5 U-Net step and VAE decode, random weights, fp32 and bf16 [threads=2] [repeats=2] [fp32=true]",
        a => UNetBenchmark.Run(Console.Out,
            threads: a.Length > 0 ? int.Parse(a[0], System.Globalization.CultureInfo.InvariantCulture) : 2,
            repeats: a.Length > 1 ? int.Parse(a[1], System.Globalization.CultureInfo.InvariantCulture) : 2,
            includeFp32: a.Length <= 2 || bool.Parse(a[2]))),
    ["lora"] = ("apply and restore a rank-32 kohya LoRA (264 modules) on a full-size SD1.5 U-Net + text encoder, fp32 and bf16 [threads=2] [rank=32] [jobs=3]",
        a => LoraBenchmark.Run(Console.Out,
            threads: a.Length > 0 ? int.Parse(a[0], System.Globalization.CultureInfo.InvariantCulture) : 2,
            rank: a.Length > 1 ? int.Parse(a[1], System.Globalization.CultureInfo.InvariantCulture) : 32,
            repeats: a.Length > 2 ? int.Parse(a[2], System.Globalization.CultureInfo.InvariantCulture) : 3)),
    ["upscale"] = ("A1111 tiled x4 upscale of a 512x512 image with a full-size RRDBNet (fp32, bf16; s/image, peak RSS) and the SD1.5 ControlNet cost per guided step [threads=2] [size=512] [controlnet=true] [precisions=fp32,bf16]",
        a => UpscaleBenchmark.Run(Console.Out,
            threads: a.Length > 0 ? int.Parse(a[0], System.Globalization.CultureInfo.InvariantCulture) : 2,
            size: a.Length > 1 ? int.Parse(a[1], System.Globalization.CultureInfo.InvariantCulture) : 512,
            controlNet: a.Length <= 2 || bool.Parse(a[2]),
            precisions: a.Length > 3
                ? a[3].Split(',').Select(p => p.Trim().ToLowerInvariant() switch
                {
                    "fp32" => TorchSharp.torch.ScalarType.Float32,
                    "bf16" => TorchSharp.torch.ScalarType.BFloat16,
                    var other => throw new ArgumentException($"unknown precision '{other}': fp32 or bf16"),
                }).ToList()
                : null)),
    ["server"] = ("txt2img through the HTTP server vs the generation service on the tiny SD1 test model: per-request overhead, requests/s at once [requests=20] [steps=4] [size=16]",
        a => ServerBenchmark.Run(Console.Out,
            requests: a.Length > 0 ? int.Parse(a[0], System.Globalization.CultureInfo.InvariantCulture) : 20,
            steps: a.Length > 1 ? int.Parse(a[1], System.Globalization.CultureInfo.InvariantCulture) : 4,
            size: a.Length > 2 ? int.Parse(a[2], System.Globalization.CultureInfo.InvariantCulture) : 16)),
};

if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var bench))
{
    Console.WriteLine("benchmarks:");
    foreach (var (name, (help, _)) in benchmarks) Console.WriteLine($"  {name,-10} {help}");
    return args.Length == 0 ? 0 : 2;
}

bench.Run(args[1..]);
return 0;
