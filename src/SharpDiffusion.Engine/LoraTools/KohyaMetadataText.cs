using System.Globalization;
using System.Text;

namespace SharpDiffusion.Engine.LoraTools;

/// <summary>Metadata values spelled as kohya's Python writes them (<c>str(float)</c>, <c>json.dumps</c>), so tools that parse them agree.</summary>
internal static class KohyaMetadataText
{
    /// <summary>Python's <c>str(float(x))</c>: "4.0", "2.5", "0.001".</summary>
    public static string Float(double value)
    {
        if (double.IsNaN(value)) return "nan";
        if (double.IsInfinity(value)) return value > 0 ? "inf" : "-inf";
        if (value == Math.Floor(value) && Math.Abs(value) < 1e16) return value.ToString("F1", CultureInfo.InvariantCulture);
        return value.ToString("R", CultureInfo.InvariantCulture);
    }

    /// <summary>Python's <c>json.dumps</c> of a flat string dictionary: <c>{"a": "1", "b": "2"}</c>.</summary>
    public static string JsonDumps(IReadOnlyDictionary<string, string> values)
    {
        var text = new StringBuilder("{");
        foreach (var (key, value) in values)
        {
            if (text.Length > 1) text.Append(", ");
            text.Append(System.Text.Json.JsonSerializer.Serialize(key)).Append(": ").Append(System.Text.Json.JsonSerializer.Serialize(value));
        }
        return text.Append('}').ToString();
    }
}
