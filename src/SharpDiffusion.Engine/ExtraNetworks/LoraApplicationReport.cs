using SharpDiffusion.Conversion;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// What happened to one LoRA of a job: the tag, the file (null when no file has the name), how many modules matched the
/// model, the network keys that matched nothing, whether it was applied and the file's A1111 hash.
/// </summary>
public sealed record LoraApplicationReport(
    A1111NetworkTag Tag,
    string? Path,
    int MatchedModules,
    IReadOnlyList<string> UnmatchedKeys,
    bool Applied,
    string? Hash)
{
    public string? ShortHash => LoraShortHash.Short(Hash);

    /// <summary>Why it was not applied, in a few words ("no such file", "SDXL LoRA on an SD1 model"); null when applied.</summary>
    public string? NotAppliedReason { get; init; }

    /// <summary>The one-line <c>--verbose</c> summary.</summary>
    public string Summary => $"lora {Tag.Name}: {MatchedModules} modules matched, {UnmatchedKeys.Count} keys unmatched"
        + (Applied ? $" (te {Tag.TextEncoderStrength:0.###}, unet {Tag.UnetStrength:0.###})" : ", not applied");
}
