using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpDiffusion.Png;

/// <summary>
/// AUTOMATIC1111's generation parameters text (the PNG "parameters" entry), formatted and parsed as A1111 does:
/// <code>
/// prompt (one or more lines)
/// Negative prompt: negative (only when not empty; may continue on further lines)
/// Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: ..., Model: ..., Clip skip: 2, Version: ...
/// </code>
/// Formatting follows <c>processing.create_infotext</c>: <c>key: value</c> pairs joined by ", ", a value equal to its
/// key written alone, values holding a comma, colon or newline written as JSON strings (<c>infotext_utils.quote</c>,
/// non-ASCII kept). Parsing follows <c>infotext_utils.parse_generation_parameters</c>: the last line holds the
/// parameters only if the parameter pattern matches it at least 3 times; JSON-quoted values are unquoted; empty
/// values are dropped (A1111 fails on them and skips the key).
/// </summary>
public sealed partial class A1111Infotext
{
    public const string PngKeyword = "parameters";
    private const string NegativePrefix = "Negative prompt:";

    public string Prompt { get; set; } = "";
    public string NegativePrompt { get; set; } = "";

    /// <summary>Parameters in order, values unquoted (e.g. <c>("Size", "512x512")</c>).</summary>
    public List<KeyValuePair<string, string>> Parameters { get; } = new();

    /// <summary>Gets a parameter (null when absent); setting replaces it in place or appends it; null removes it.</summary>
    public string? this[string key]
    {
        get
        {
            foreach (var p in Parameters) if (p.Key == key) return p.Value;
            return null;
        }
        set
        {
            int i = Parameters.FindIndex(p => p.Key == key);
            if (value == null)
            {
                if (i >= 0) Parameters.RemoveAt(i);
            }
            else if (i >= 0) Parameters[i] = new(key, value);
            else Parameters.Add(new(key, value));
        }
    }

    public int? Steps => ParseInt(this["Steps"]);
    public string? Sampler => this["Sampler"];

    /// <summary>A1111 reads a missing "Schedule type" as Automatic.</summary>
    public string ScheduleType => this["Schedule type"] ?? "Automatic";

    public double? CfgScale => double.TryParse(this["CFG scale"], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null;
    public long? Seed => long.TryParse(this["Seed"], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;

    /// <summary>"Size: 512x768" is width x height.</summary>
    public (int Width, int Height)? Size
    {
        get
        {
            var m = this["Size"] is { } s ? ImageSizePattern().Match(s) : null;
            return m is { Success: true } ? (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)) : null;
        }
    }

    public string? ModelHash => this["Model hash"];
    public string? Model => this["Model"];

    /// <summary>A1111 reads a missing "Clip skip" as 1.</summary>
    public int ClipSkip => ParseInt(this["Clip skip"]) ?? 1;

    public string? Version => this["Version"];

    /// <summary>
    /// The parameters of a txt2img run in A1111's order. Optional entries are left out as A1111 leaves them out
    /// (no model hash/name when null, Clip skip only above 1, Version when given).
    /// </summary>
    public static A1111Infotext ForTxt2Img(string prompt, string negativePrompt, int steps, string sampler, string scheduleType,
        double cfgScale, long seed, int width, int height, string? modelHash = null, string? model = null, int clipSkip = 1,
        string? version = null)
    {
        var info = new A1111Infotext { Prompt = prompt, NegativePrompt = negativePrompt };
        info["Steps"] = steps.ToString(CultureInfo.InvariantCulture);
        info["Sampler"] = sampler;
        info["Schedule type"] = scheduleType;
        info["CFG scale"] = FormatNumber(cfgScale);
        info["Seed"] = seed.ToString(CultureInfo.InvariantCulture);
        info["Size"] = $"{width}x{height}";
        info["Model hash"] = modelHash;
        info["Model"] = model;
        if (clipSkip > 1) info["Clip skip"] = clipSkip.ToString(CultureInfo.InvariantCulture);
        info["Version"] = version;
        return info;
    }

    /// <summary>
    /// The name in an A1111 model title, "name [short hash]" (the <c>Model</c>/<c>Refiner</c> values, the API's
    /// checkpoint and ControlNet titles): the title trimmed and without its bracketed hash.
    /// </summary>
    public static string NameOfTitle(string title)
    {
        var name = title.Trim();
        int bracket = name.LastIndexOf(" [", StringComparison.Ordinal);
        return bracket > 0 && name.EndsWith(']') ? name[..bracket] : name;
    }

    /// <summary>Numbers as A1111 shows them: integral values without a fraction ("7"), others shortest round-trip ("7.5").</summary>
    public static string FormatNumber(double value) =>
        value == Math.Floor(value) && Math.Abs(value) < 1e15 ? ((long)value).ToString(CultureInfo.InvariantCulture) : value.ToString("R", CultureInfo.InvariantCulture);

    public string Format()
    {
        var parameters = string.Join(", ", Parameters.Select(p => p.Key == p.Value ? p.Key : $"{p.Key}: {Quote(p.Value)}"));
        string negative = NegativePrompt.Length > 0 ? $"\n{NegativePrefix} {NegativePrompt}" : "";
        return $"{Prompt}{negative}\n{parameters}".Trim();
    }

    public override string ToString() => Format();

    public static A1111Infotext Parse(string text)
    {
        var result = new A1111Infotext();
        var lines = text.Trim().Split('\n').ToList();
        string lastLine = lines[^1];
        lines.RemoveAt(lines.Count - 1);
        if (ParamPattern().Matches(lastLine).Count < 3)
        {
            lines.Add(lastLine);
            lastLine = "";
        }

        var prompt = new StringBuilder();
        var negative = new StringBuilder();
        bool doneWithPrompt = false;
        foreach (var raw in lines)
        {
            string line = raw.Trim();
            if (line.StartsWith(NegativePrefix, StringComparison.Ordinal))
            {
                doneWithPrompt = true;
                line = line[NegativePrefix.Length..].Trim();
            }
            var target = doneWithPrompt ? negative : prompt;
            if (target.Length > 0) target.Append('\n');
            target.Append(line);
        }
        result.Prompt = prompt.ToString();
        result.NegativePrompt = negative.ToString();

        foreach (Match m in ParamPattern().Matches(lastLine))
        {
            string key = m.Groups[1].Value, value = m.Groups[2].Value;
            if (value.Length == 0) continue;
            result[key] = Unquote(value);
        }
        return result;
    }

    /// <summary>A1111's <c>quote</c>: JSON (non-ASCII kept) when the value holds a comma, colon or newline.</summary>
    public static string Quote(string value)
    {
        if (!value.Contains(',') && !value.Contains('\n') && !value.Contains(':')) return value;
        return PythonJsonString(value);
    }

    /// <summary>A1111's <c>unquote</c>: a value in double quotes is read as a JSON string when it is one.</summary>
    public static string Unquote(string value)
    {
        if (value.Length < 2 || value[0] != '"' || value[^1] != '"') return value;
        try
        {
            return JsonSerializer.Deserialize<string>(value) ?? value;
        }
        catch (JsonException)
        {
            return value;
        }
    }

    /// <summary>Python's <c>json.dumps(s, ensure_ascii=False)</c> for a string.</summary>
    internal static string PythonJsonString(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    private static int? ParseInt(string? s) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;

    /// <summary>A1111's <c>re_param</c>: key (word character, then words, spaces, '-' or '/'), then a JSON string or text up to a comma.</summary>
    [GeneratedRegex("""\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)""")]
    private static partial Regex ParamPattern();

    [GeneratedRegex(@"^(\d+)x(\d+)$")]
    private static partial Regex ImageSizePattern();
}
