using SharpDiffusion.Engine.Models;

namespace SharpDiffusion.Engine.Diagnostics;

/// <summary>
/// The module sizes of a random checkpoint: the U-Net and VAE configs and the CLIP text tower (Hugging Face
/// CLIPTextModel sizes). <see cref="Sd15"/> is Stable Diffusion 1.5; <see cref="Tiny"/> has the shapes of the
/// golden tiny_sd1 model (for tests that write a whole file).
/// </summary>
public sealed record RandomModelArchitecture(string Name, UNetConfig UNet, VaeConfig Vae,
    int TextVocab, int TextWidth, int TextLayers, int TextHeads, int TextMlpWidth, int TextPositions)
{
    public static RandomModelArchitecture Sd15 { get; } = new("sd15",
        new UNetConfig
        {
            ModelChannels = 320,
            ChannelMult = new[] { 1, 2, 4, 4 },
            NumResBlocks = new[] { 2, 2, 2, 2 },
            TransformerDepth = new[] { 1, 1, 1, 0 },
            TransformerDepthMiddle = 1,
            ContextDim = 768,
            NumHeads = 8,
            NumHeadChannels = -1,
        },
        new VaeConfig
        {
            Ch = 128,
            ChMult = new[] { 1, 2, 4, 4 },
            NumResBlocks = 2,
            AttentionLevels = new[] { false, false, false, false },
            ScaleFactor = VaeConfig.Sd1ScaleFactor,
        },
        TextVocab: 49408, TextWidth: 768, TextLayers: 12, TextHeads: 12, TextMlpWidth: 3072, TextPositions: 77);

    public static RandomModelArchitecture Tiny { get; } = new("tiny",
        new UNetConfig
        {
            ModelChannels = 32,
            ChannelMult = new[] { 1, 2 },
            NumResBlocks = new[] { 1, 1 },
            TransformerDepth = new[] { 0, 1 },
            TransformerDepthMiddle = 1,
            ContextDim = 32,
            NumHeads = 4,
            NumHeadChannels = -1,
        },
        new VaeConfig
        {
            Ch = 32,
            ChMult = new[] { 1, 2 },
            NumResBlocks = 1,
            AttentionLevels = new[] { false, false },
            ScaleFactor = VaeConfig.Sd1ScaleFactor,
        },
        TextVocab: 49408, TextWidth: 32, TextLayers: 2, TextHeads: 2, TextMlpWidth: 128, TextPositions: 77);

    public static IReadOnlyList<RandomModelArchitecture> All { get; } = new[] { Sd15, Tiny };

    /// <summary>The architecture named <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known ones.</exception>
    public static RandomModelArchitecture Parse(string name) =>
        All.FirstOrDefault(a => a.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown architecture '{name}': supported are {string.Join(", ", All.Select(a => a.Name))}");
}
