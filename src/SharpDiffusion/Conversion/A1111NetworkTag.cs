using System.Globalization;

namespace SharpDiffusion.Conversion;

/// <summary>
/// An A1111 prompt network reference, <c>&lt;lora:name:te:unet:dyn&gt;</c> (also <c>lyco:</c>): separate strengths for the
/// text encoder and the U-Net. As in A1111's <c>extra_networks_lora.py</c>: te defaults to 1, unet defaults to te,
/// and <c>te=</c>, <c>unet=</c>, <c>dyn=</c> named arguments override the positional ones.
/// </summary>
public sealed record A1111NetworkTag(string Kind, string Name, double TextEncoderStrength, double UnetStrength, int? DynamicDim)
{
    /// <summary>The strength for modules of <paramref name="part"/>.</summary>
    public double StrengthFor(ModelPart part) => part == ModelPart.Unet ? UnetStrength : TextEncoderStrength;

    /// <summary>Parses <c>&lt;lora:name[:te[:unet[:dyn]]]&gt;</c> (angle brackets optional); throws FormatException with the tag on bad input.</summary>
    public static A1111NetworkTag Parse(string tag)
    {
        var body = tag.Trim();
        if (body.StartsWith('<') && body.EndsWith('>')) body = body[1..^1];
        var items = body.Split(':');
        if (items.Length < 2 || items[1].Length == 0) throw new FormatException($"'{tag}': expected <kind:name[:te[:unet]]>");
        var positional = new List<string>();
        var named = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in items.Skip(1))
        {
            int eq = item.IndexOf('=');
            if (eq > 0) named[item[..eq].Trim()] = item[(eq + 1)..].Trim();
            else positional.Add(item.Trim());
        }
        if (positional.Count == 0) throw new FormatException($"'{tag}': no network name");
        double te = positional.Count > 1 ? Number(positional[1], tag) : 1.0;
        if (named.TryGetValue("te", out var teText)) te = Number(teText, tag);
        double unet = positional.Count > 2 ? Number(positional[2], tag) : te;
        if (named.TryGetValue("unet", out var unetText)) unet = Number(unetText, tag);
        int? dyn = positional.Count > 3 ? (int)Number(positional[3], tag) : null;
        if (named.TryGetValue("dyn", out var dynText)) dyn = (int)Number(dynText, tag);
        return new A1111NetworkTag(items[0].Trim(), positional[0], te, unet, dyn);
    }

    private static double Number(string text, string tag) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"'{tag}': '{text}' is not a number");
}
