using System.Diagnostics;
using System.Globalization;
using SharpDiffusion.Engine.Diagnostics;
using SharpDiffusion.Engine.ControlNet;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Upscaling;
using static TorchSharp.torch;

namespace SharpDiffusion.Bench;

/// <summary>
/// Issue 12's figures: an A1111 model upscale (tile 192, overlap 8) of a 512x512 image with a full-size RRDBNet
/// (23 blocks, 64 features, growth 32, x4; random weights) in fp32 and bf16, seconds per image and the peak resident
/// set of each; and the SD1.5 ControlNet's cost per guided step at 512x512 (batch 2, 64x64 latent, 512x512 hint),
/// which is the per-step overhead of one ControlNet next to the U-Net step of the "unet" benchmark.
/// </summary>
public static class UpscaleBenchmark
{
    /// <param name="precisions">The dtypes to time (a CPU without native bf16 takes many minutes per bf16 tile).</param>
    public static void Run(TextWriter output, int threads, int size, bool controlNet, IReadOnlyList<ScalarType>? precisions = null)
    {
        set_num_threads(threads);
        precisions ??= [ScalarType.Float32, ScalarType.BFloat16];
        output.WriteLine($"upscale and ControlNet, random weights, {threads} thread(s)");
        if (size > 0) foreach (var dtype in precisions) Upscale(output, dtype, size); // size 0: the ControlNet step only
        if (!controlNet) return;
        foreach (var dtype in precisions) ControlNetStep(output, dtype);
    }

    private static void Upscale(TextWriter output, ScalarType dtype, int size)
    {
        bool peakReset = ResetPeak();
        using var model = UpscalerModel.FromNetwork(new RrdbNet(RrdbNetConfig.FullSizeX4, LayerFactory.Cpu(dtype)), "random full-size RRDBNet");
        var random = new System.Random(5);
        var pixels = new byte[size * size * 3];
        random.NextBytes(pixels);
        var image = new RgbImage(size, size, pixels);
        var sw = Stopwatch.StartNew();
        var result = ModelUpscale.Upscale(model, image, 4);
        sw.Stop();
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"upscale {dtype} {RrdbNetConfig.FullSizeX4}: {size}x{size} -> {result.Width}x{result.Height} in {sw.Elapsed.TotalSeconds:F1} s; peak RSS {Peak() / 1e6:F0} MB ({(peakReset ? "this run" : "process lifetime")})"));
    }

    private static void ControlNetStep(TextWriter output, ScalarType dtype)
    {
        var config = RandomModelArchitecture.Sd15.UNet;
        using var model = new ControlNetModel(config, new[] { 3, 16, 16, 32, 32, 96, 96, 256, config.ModelChannels }, LayerFactory.Cpu(dtype));
        using var gen = new Generator(3);
        using var x = randn(new long[] { 2, 4, 64, 64 }, generator: gen);
        using var t = tensor(new[] { 500f, 500f });
        using var context = randn(new long[] { 2, 77, 768 }, generator: gen);
        using var hint = rand(new long[] { 2, 3, 512, 512 }, generator: gen);
        var times = new List<double>();
        for (int i = 0; i < 3; i++)
        {
            var sw = Stopwatch.StartNew();
            using (var residuals = model.Forward(x, t, context, hint)) { }
            if (i > 0) times.Add(sw.Elapsed.TotalSeconds);
        }
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"ControlNet SD1.5 {dtype}: residuals for a guided step (batch 2, 64x64, hint 512x512): best {times.Min():F2} s ({string.Join(", ", times.Select(v => v.ToString("F2", CultureInfo.InvariantCulture)))})"));
    }

    /// <summary>Linux: writing 5 to /proc/self/clear_refs resets the peak resident set (VmHWM).</summary>
    private static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static long Peak()
    {
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        return self.PeakWorkingSet64;
    }
}
