using SharpDiffusion.Engine.Pipeline;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// A job run with extra networks: the images, what was not applied and why (warnings), the <c>--verbose</c> lines
/// (matched/unmatched counts), and A1111's extra infotext fields in A1111's order (<c>Lora hashes</c>, <c>TI hashes</c>,
/// <c>Hypernet</c>, <c>Hypernet strength</c>, then <c>Not applied</c>), only those that apply.
/// </summary>
public sealed record ExtraNetworkJobResult(
    GenerationResult Result,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<string> Details,
    IReadOnlyList<KeyValuePair<string, string>> InfotextFields,
    IReadOnlyList<LoraApplicationReport> Loras) : IDisposable
{
    /// <summary>The requested networks the job ran without, with reasons (also the <c>Not applied</c> infotext field).</summary>
    public IReadOnlyList<NotAppliedNetwork> NotApplied { get; init; } = [];

    public void Dispose() => Result.Dispose();
}
