using System.Globalization;
using System.Text.RegularExpressions;
using SharpDiffusion.Conversion;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// A prompt with A1111's extra-network tags taken out (<c>extra_networks.parse_prompt</c>): every
/// <c>&lt;kind:args&gt;</c> matching <c>&lt;(\w+):([^&gt;]+)&gt;</c> is removed from the text, whatever its kind, and
/// the LoRA (<c>lora</c>, <c>lyco</c>) and hypernetwork tags are returned in prompt order.
/// </summary>
public sealed partial record ExtraNetworkPrompt(
    string Prompt,
    IReadOnlyList<A1111NetworkTag> Loras,
    IReadOnlyList<HypernetworkTag> Hypernetworks,
    IReadOnlyList<string> Warnings)
{
    /// <summary>The LoRA and hypernetwork tags as written, in prompt order (what two prompts compare to use the same networks).</summary>
    public IReadOnlyList<string> NetworkTags { get; private init; } = [];

    /// <summary>Both prompts name the same LoRAs and hypernetworks, written alike and in the same order (what one job can serve).</summary>
    public bool UsesSameNetworksAs(ExtraNetworkPrompt other) => NetworkTags.SequenceEqual(other.NetworkTags);

    [GeneratedRegex(@"<(\w+):([^>]+)>")]
    private static partial Regex TagPattern();

    public static ExtraNetworkPrompt Extract(string prompt)
    {
        var loras = new List<A1111NetworkTag>();
        var hypernets = new List<HypernetworkTag>();
        var warnings = new List<string>();
        var tags = new List<string>();
        var cleaned = TagPattern().Replace(prompt, match =>
        {
            string kind = match.Groups[1].Value;
            string args = match.Groups[2].Value;
            switch (kind)
            {
                case "lora":
                case "lyco":
                    tags.Add(match.Value);
                    try { loras.Add(A1111NetworkTag.Parse(match.Value)); }
                    catch (FormatException e) { warnings.Add($"ignored {match.Value}: {e.Message}"); }
                    break;
                case "hypernet":
                    tags.Add(match.Value);
                    if (ParseHypernet(args) is { } hn) hypernets.Add(hn);
                    else warnings.Add($"ignored {match.Value}: expected <hypernet:name[:strength]>");
                    break;
                default:
                    // A1111 removes unknown kinds too and logs "Skipping unknown extra network".
                    warnings.Add($"skipping unknown extra network {match.Value}");
                    break;
            }
            return "";
        });
        return new ExtraNetworkPrompt(cleaned, loras, hypernets, warnings) { NetworkTags = tags };
    }

    /// <summary>A1111 <c>extra_networks_hypernet</c>: items[0] is the name, items[1] (if any) the multiplier.</summary>
    private static HypernetworkTag? ParseHypernet(string args)
    {
        var items = args.Split(':');
        if (items[0].Length == 0) return null;
        double strength = 1.0;
        if (items.Length > 1 && !double.TryParse(items[1], NumberStyles.Float, CultureInfo.InvariantCulture, out strength))
            return null;
        return new HypernetworkTag(items[0], strength);
    }
}
