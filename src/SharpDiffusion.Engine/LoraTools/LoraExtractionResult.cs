namespace SharpDiffusion.Engine.LoraTools;

/// <summary>What <see cref="LoraExtractor"/> wrote.</summary>
/// <param name="UnetModules">U-Net modules written.</param>
/// <param name="TextEncoderModules">Text-encoder modules written (0 when the text encoders did not differ enough).</param>
/// <param name="TextEncoderMaxDiff">Largest absolute difference over the text-encoder target weights.</param>
/// <param name="UnetMaxDiff">Largest absolute difference over the U-Net target weights (0: nothing to extract there).</param>
/// <param name="MeanKeptEnergy">Mean over modules of the change's energy (sum S²) kept by the truncation, before clamping.</param>
public sealed record LoraExtractionResult(int UnetModules, int TextEncoderModules, double TextEncoderMaxDiff, double UnetMaxDiff, double MeanKeptEnergy,
    IReadOnlyDictionary<string, string> Metadata);
