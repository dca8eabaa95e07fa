using SharpDiffusion.Architectures;
using System.Globalization;
using System.Text.RegularExpressions;

namespace SharpDiffusion.Workshop;

/// <summary>
/// Per-block merge multipliers for the U-Net ("MBW"), in the order of sd-webui-merge-block-weighted and supermerger:
/// BASE, IN00-IN11, M00, OUT00-OUT11 (26 names). A list of 26 values gives all of them; a list of 25 gives IN00-OUT11
/// and BASE is the merge's --multiplier (merge-block-weighted's separate base_alpha).
/// <para>
/// Keys map to blocks as merge-block-weighted does: <c>model.diffusion_model.input_blocks.N.*</c> to IN(N),
/// <c>middle_block.*</c> to M00, <c>output_blocks.N.*</c> to OUT(N), <c>time_embed.*</c> to IN00 (it runs before the
/// input blocks) and the final <c>out.*</c> to OUT11; every other key (text encoder, VAE, DDPM buffers, and U-Net
/// keys outside these groups such as SDXL's <c>label_emb</c>) takes BASE. supermerger agrees except for
/// <c>time_embed</c>, which a negative list index sends to OUT11 there; we keep the documented intent.
/// SDXL's U-Net has 9 input and 9 output blocks, so IN09-IN11 and OUT09-OUT11 simply match no key there.
/// </para>
/// </summary>
public sealed partial class BlockWeights
{
    public const int Count = 26;

    public static readonly IReadOnlyList<string> BlockNames = BuildNames();

    private readonly double[] _weights;

    public BlockWeights(IReadOnlyList<double> weights)
    {
        if (weights.Count != Count) throw new ArgumentException($"block weights need {Count} values (BASE, IN00-IN11, M00, OUT00-OUT11), got {weights.Count}");
        foreach (double w in weights)
            if (!double.IsFinite(w)) throw new ArgumentException($"block weight {w} is not a finite number");
        _weights = weights.ToArray();
    }

    /// <summary>BASE, IN00 ... OUT11.</summary>
    public IReadOnlyList<double> Values => _weights;

    public double this[string block] => _weights[IndexOf(block)];

    /// <summary>
    /// Parses 26 (BASE first) or 25 (IN00-OUT11; BASE = <paramref name="baseMultiplier"/>) numbers separated by commas
    /// and/or spaces. Throws <see cref="FormatException"/> with a one-line reason.
    /// </summary>
    public static BlockWeights Parse(string text, double baseMultiplier)
    {
        var parts = text.Split([',', ' ', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries);
        var values = new List<double>();
        foreach (var part in parts)
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
                throw new FormatException($"block weight '{part}' is not a number");
            values.Add(v);
        }
        if (values.Count == Count - 1) values.Insert(0, baseMultiplier);
        else if (values.Count != Count)
            throw new FormatException($"block weights need 26 values (BASE, IN00-IN11, M00, OUT00-OUT11) or 25 (without BASE), got {values.Count}");
        return new BlockWeights(values);
    }

    /// <summary>The block a checkpoint key belongs to (BASE for everything outside the U-Net's blocks).</summary>
    public static string BlockOf(string key)
    {
        if (!key.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal)) return "BASE";
        if (key.Contains("time_embed", StringComparison.Ordinal)) return "IN00";
        if (key.Contains(".out.", StringComparison.Ordinal)) return "OUT11";
        var m = InputBlock().Match(key);
        if (m.Success) return Numbered("IN", m.Groups[1].Value, key);
        if (MiddleBlock().IsMatch(key)) return "M00";
        m = OutputBlock().Match(key);
        if (m.Success) return Numbered("OUT", m.Groups[1].Value, key);
        return "BASE";
    }

    /// <summary>The multiplier for <paramref name="key"/>.</summary>
    public double WeightFor(string key) => this[BlockOf(key)];

    /// <summary>Compact text: the 26 values in invariant culture, comma separated.</summary>
    public override string ToString() => string.Join(",", _weights.Select(w => w.ToString("R", CultureInfo.InvariantCulture)));

    private static string Numbered(string prefix, string digits, string key)
    {
        int n = int.Parse(digits, CultureInfo.InvariantCulture);
        if (n > 11) throw new WorkshopException($"tensor '{key}': block {prefix}{n} is beyond the 12 blocks per side that block weights cover");
        return prefix + n.ToString("00", CultureInfo.InvariantCulture);
    }

    private static int IndexOf(string block)
    {
        for (int i = 0; i < Count; i++) if (BlockNames[i] == block) return i;
        throw new ArgumentException($"unknown block '{block}'", nameof(block));
    }

    private static string[] BuildNames()
    {
        var names = new List<string> { "BASE" };
        for (int i = 0; i < 12; i++) names.Add($"IN{i:00}");
        names.Add("M00");
        for (int i = 0; i < 12; i++) names.Add($"OUT{i:00}");
        return names.ToArray();
    }

    [GeneratedRegex(@"\.input_blocks\.(\d+)\.")]
    private static partial Regex InputBlock();

    [GeneratedRegex(@"\.middle_block\.(\d+)\.")]
    private static partial Regex MiddleBlock();

    [GeneratedRegex(@"\.output_blocks\.(\d+)\.")]
    private static partial Regex OutputBlock();
}
