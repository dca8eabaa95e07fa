using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Text.Conditioners;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Pipeline;

/// <summary>
/// Text to image through the whole engine (checkpoint loading with its config, tokenizer, text encoder, U-Net,
/// sampler, VAE, 8-bit conversion) against the goldens' sampling runs: latents within 1e-3 x rms, 8-bit images
/// within 1 level on at most 1% of values.
/// </summary>
public class PipelineGoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> Runs() => new()
    {
        { "tiny_sd1", "euler" }, { "tiny_sd1", "euler_ancestral" }, { "tiny_sd1", "dpmpp_2m_karras" }, { "tiny_sd1", "ddim" },
        { "tiny_sd2v", "euler" }, { "tiny_sd2v", "dpmpp_2m" },
        { "tiny_sdxl", "euler" }, { "tiny_sdxl", "euler_ancestral" },
    };

    private static GenerationRequest RequestFor(string model, string run)
    {
        var (prompt, cfg, seed) = model switch
        {
            "tiny_sd2v" => ("a watercolor painting of a red fox in the snow", 6.5, 31337L),
            "tiny_sdxl" => ("a photograph of an astronaut riding a horse", 5.0, 42L),
            _ => ("a photograph of an astronaut riding a horse", 7.0, 42L),
        };
        return new GenerationRequest
        {
            Prompt = prompt,
            NegativePrompt = "",
            Steps = 8,
            Sampler = run,
            CfgScale = cfg,
            Seed = seed,
            Width = 16,
            Height = 16,
            A1111SigmaQuirks = false,
            SizeConditioning = model == "tiny_sdxl" ? new ImageSizeConditioning(1024, 1024, 0, 0, 1024, 1024) : null,
        };
    }

    [Theory]
    [MemberData(nameof(Runs))]
    public void TextToImageMatchesTheGoldenRun(string model, string run)
    {
        using var checkpoint = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile(model + ".safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile(model + ".config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
        });
        using var result = ImageGenerator.Generate(checkpoint, RequestFor(model, run));
        using var golden = GoldenTensors.Open(model + "_golden.safetensors");
        using var scope = NewDisposeScope();

        var expectedLatents = golden.Get($"sample.{run}.latents");
        double rel = TensorAssert.MaxAbsDiff(expectedLatents, result.Latents) / TensorAssert.Rms(expectedLatents);
        output.WriteLine($"{model} {run}: latents max abs diff / rms = {rel:E2}");
        TensorAssert.CloseRelativeToRms(expectedLatents, result.Latents, 1e-3, $"{model} {run} latents");

        var expectedU8 = golden.Get($"sample.{run}.image_u8")[0].permute(1, 2, 0).flatten();
        var actualU8 = tensor(result.Images[0]).to(ScalarType.Float32);
        var levels = (expectedU8 - actualU8).abs();
        double worst = levels.max().item<float>();
        double offShare = levels.gt(0).sum().item<long>() / (double)levels.numel();
        output.WriteLine($"{model} {run}: 8-bit worst {worst} levels, {offShare:P2} of values differ");
        Assert.True(worst <= 1, $"8-bit image differs by {worst} levels");
        Assert.True(offShare <= 0.01, $"{offShare:P2} of 8-bit values differ");
    }
}
