using System.Diagnostics;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Bench;

/// <summary>
/// Full-size SD1.5 UNet and VAE speed on the CPU with random weights: one guided step (batch 2, 64×64 latent,
/// context [2, 77, 768]) in fp32 and bf16, and a VAE decode of one 64×64 latent (512×512 image).
/// Targets: UNet step ≤ 13 s in bf16, VAE decode ≤ 20 s (2 threads).
/// </summary>
public static class UNetBenchmark
{
    public static void Run(TextWriter output, int threads = 2, int repeats = 2, bool includeFp32 = true)
    {
        set_num_threads(threads);
        output.WriteLine($"SD1.5 UNet/VAE, random weights, {threads} thread(s), best of {repeats} after one warm-up");
        if (includeFp32) UNetStep(output, ScalarType.Float32, repeats);
        UNetStep(output, ScalarType.BFloat16, repeats);
        VaeDecode(output, ScalarType.Float32, repeats);
        VaeDecode(output, ScalarType.BFloat16, repeats);
    }

    private static UNetConfig Sd15UNet => RandomModelArchitecture.Sd15.UNet;

    private static VaeConfig Sd15Vae => RandomModelArchitecture.Sd15.Vae;

    public static void UNetStep(TextWriter output, ScalarType dtype, int repeats)
    {
        var build = Stopwatch.StartNew();
        using var unet = new UNetModel(Sd15UNet, LayerFactory.Cpu(dtype));
        build.Stop();
        long bytes = unet.parameters().Sum(p => p.NumberOfElements * p.ElementSize);
        using var gen = new Generator(1);
        using var x = randn(new long[] { 2, 4, 64, 64 }, generator: gen);
        using var t = tensor(new[] { 999f, 999f });
        using var context = randn(new long[] { 2, 77, 768 }, generator: gen);
        var times = Time(repeats, () => unet.Forward(x, t, context));
        output.WriteLine($"UNet {dtype}: parameters {bytes / 1e9:F2} GB (built in {build.Elapsed.TotalSeconds:F1} s); " +
                         $"guided step (batch 2, 64x64): {Describe(times)}");
    }

    public static void VaeDecode(TextWriter output, ScalarType dtype, int repeats)
    {
        using var vae = new AutoencoderKL(Sd15Vae, LayerFactory.Cpu(dtype));
        using var gen = new Generator(2);
        using var latents = randn(new long[] { 1, 4, 64, 64 }, generator: gen);
        var times = Time(repeats, () => vae.Decode(latents));
        output.WriteLine($"VAE {dtype}: decode 1x4x64x64 -> 512x512: {Describe(times)}");
    }

    /// <summary>Wall and process CPU seconds per timed run (CPU time shows contention on a shared machine).</summary>
    private static List<(double Wall, double Cpu)> Time(int repeats, Func<Tensor> step)
    {
        var times = new List<(double, double)>();
        using var inference = inference_mode();
        var process = Process.GetCurrentProcess();
        for (int i = 0; i <= repeats; i++)
        {
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            using (NewDisposeScope()) step();
            sw.Stop();
            process.Refresh();
            if (i > 0) times.Add((sw.Elapsed.TotalSeconds, (process.TotalProcessorTime - cpu).TotalSeconds));
        }
        return times;
    }

    private static string Describe(List<(double Wall, double Cpu)> runs) =>
        $"best {runs.Min(r => r.Wall):F2} s wall (runs: " +
        string.Join(", ", runs.Select(r => string.Format(System.Globalization.CultureInfo.InvariantCulture, "{0:F2} s wall / {1:F2} s cpu", r.Wall, r.Cpu))) + ")";
}
