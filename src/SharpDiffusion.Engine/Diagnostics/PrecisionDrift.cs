using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Sampling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Diagnostics;

/// <summary>How far a stage's bf16 result lies from its fp32 result: rms of the difference over rms of the fp32 result, and the largest difference.</summary>
public sealed record DriftFigure(string Stage, double RelativeRms, double MaxAbs);

/// <summary>
/// Measures what bf16 changes for one checkpoint: the same inputs through the fp32 and the bf16 model: the text
/// encoding, one U-Net evaluation (on the same fp32 conditioning), a short guided Euler run end to end, and the VAE
/// decode of the fp32 latents. The golden tolerances are fp32 ones; this says what a user trades for bf16's speed and memory.
/// </summary>
public static class PrecisionDrift
{
    public static IReadOnlyList<DriftFigure> Measure(string modelPath, int size, int steps, string? tokenizerPath = null, string? configPath = null, Action<string>? log = null)
    {
        if (steps < 1) throw new ArgumentException("--steps must be at least 1");
        NnpackSwitch.Disable();
        log?.Invoke($"loading {modelPath} in fp32 and in bf16");
        using var full = StableDiffusionCheckpoint.Load(modelPath, new CheckpointLoadOptions { TokenizerPath = tokenizerPath, ConfigPath = configPath });
        using var half = StableDiffusionCheckpoint.Load(modelPath, new CheckpointLoadOptions { TokenizerPath = tokenizerPath, ConfigPath = configPath, DType = ScalarType.BFloat16 });
        if (size <= 0 || size % full.SizeMultiple != 0)
            throw new ArgumentException($"--size {size}: must be a positive multiple of {full.SizeMultiple} for this model");

        using var mode = inference_mode();
        using var scope = NewDisposeScope();
        var (cond, uncond, _) = BenchRunner.EncodePrompts(full, tokenizerPath);
        var (condHalf, uncondHalf, _) = BenchRunner.EncodePrompts(half, tokenizerPath);
        int factor = full.Vae.Config.DownsampleFactor;
        var figures = new List<DriftFigure> { Compare("text_encode", cond.CrossAttention, condHalf.CrossAttention) };

        log?.Invoke("one U-Net evaluation at t = 500 (both on the fp32 text conditioning)");
        var generator = new TorchSharp.torch.Generator(1234);
        var x = randn(new long[] { 1, full.LatentChannels, size / factor, size / factor }, generator: generator);
        var t = tensor(new[] { 500f });
        figures.Add(Compare("unet_eval", full.UNet.Forward(x, t, cond.CrossAttention, cond.Vector), half.UNet.Forward(x, t, cond.CrossAttention, cond.Vector)));

        log?.Invoke($"{steps} guided Euler step(s)");
        var request = new SamplingRequest
        {
            Sampler = "Euler",
            Steps = steps,
            CfgScale = 7.0,
            Seed = 1234,
            LatentShape = new long[] { full.LatentChannels, size / factor, size / factor },
        };
        var latentsFull = SamplingRun.Run(full.CreateDenoiser(), cond, uncond, request);
        var latentsHalf = SamplingRun.Run(half.CreateDenoiser(), condHalf, uncondHalf, request); // end to end: bf16 text too
        figures.Add(Compare("sampled_latents", latentsFull, latentsHalf));

        log?.Invoke("VAE decode of the fp32 latents");
        figures.Add(Compare("vae_decode", full.Vae.Decode(latentsFull), half.Vae.Decode(latentsFull)));
        return figures;
    }

    private static DriftFigure Compare(string stage, Tensor reference, Tensor other)
    {
        var a = reference.to(ScalarType.Float64);
        var diff = other.to(ScalarType.Float64) - a;
        double rms = a.square().mean().sqrt().item<double>();
        double rmsDiff = diff.square().mean().sqrt().item<double>();
        return new DriftFigure(stage, rms == 0 ? rmsDiff : rmsDiff / rms, diff.abs().max().item<double>());
    }
}
