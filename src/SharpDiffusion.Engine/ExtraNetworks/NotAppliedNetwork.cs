
namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// An extra network a job asked for and ran without, with the reason in a few words, e.g. <c>lora:foo (no such file)</c>.
/// A1111 has no infotext field for these; <see cref="InfotextKey"/> adds one in its <c>Key: value</c> style so the PNG
/// says which requested networks did not shape the image.
/// </summary>
/// <param name="Kind">The prompt syntax's kind: <c>lora</c>, <c>lyco</c>, <c>hypernet</c>, or <c>embedding</c>.</param>
public sealed record NotAppliedNetwork(string Kind, string Name, string Reason)
{
    public const string InfotextKey = "Not applied";

    public override string ToString() => $"{Kind}:{Name} ({Reason})";

    /// <summary>The <see cref="InfotextKey"/> value ("kind:name (reason), ..."), or null when every network applied.</summary>
    public static string? InfotextValue(IReadOnlyCollection<NotAppliedNetwork> networks) =>
        networks.Count == 0 ? null : string.Join(", ", networks);
}
