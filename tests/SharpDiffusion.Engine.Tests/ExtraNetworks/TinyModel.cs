using SharpDiffusion.Engine.Pipeline;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

/// <summary>The golden tiny SD1 checkpoint (32-wide text encoder, 64-wide attention) and a short job for it.</summary>
internal static class TinyModel
{
    public static StableDiffusionCheckpoint Load() =>
        StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
        });

    public static GenerationRequest Request(string prompt, string negative = "") => new()
    {
        Prompt = prompt,
        NegativePrompt = negative,
        Steps = 3,
        Sampler = "Euler",
        Seed = 7,
        Width = 16,
        Height = 16,
        A1111SigmaQuirks = false,
    };
}
