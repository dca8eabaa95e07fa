using System.Globalization;
using System.Text.Json;

namespace SharpDiffusion.Server;

/// <summary>One FastAPI/pydantic validation error: where (["body", field]), what, and pydantic's type code.</summary>
public sealed record ValidationError(IReadOnlyList<object> Loc, string Msg, string Type);

/// <summary>
/// Reads a JSON request body with A1111's leniency: unknown fields are ignored, null means the default, numbers may
/// come as strings ("20") or, for integers, as floats with no fraction (20.0). Problems are collected as pydantic
/// errors so that one 422 lists them all.
/// </summary>
public sealed class RequestReader(JsonElement body)
{
    public List<ValidationError> Errors { get; } = [];

    /// <summary>The value each known field ended up with, for the response's "parameters" echo.</summary>
    public Dictionary<string, object?> Echo { get; } = new(StringComparer.Ordinal);

    public bool Has(string name) => body.ValueKind == JsonValueKind.Object && body.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement? Raw(string name) => Has(name) ? body.GetProperty(name) : null;

    public string String(string name, string fallback) => NullableString(name) ?? Remember(name, fallback);

    public string? NullableString(string name)
    {
        if (!Has(name)) return Remember<string?>(name, null);
        var v = body.GetProperty(name);
        if (v.ValueKind == JsonValueKind.String) return Remember(name, v.GetString());
        if (v.ValueKind is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False) return Remember(name, v.GetRawText());
        Errors.Add(new ValidationError(["body", name], "str type expected", "type_error.str"));
        return null;
    }

    public long Long(string name, long fallback, long min = long.MinValue, long max = long.MaxValue)
    {
        if (!Has(name)) return Remember(name, fallback);
        var v = body.GetProperty(name);
        long value;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out value)) { }
        else if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && d == Math.Floor(d) && Math.Abs(d) < 9e18) value = (long)d;
        else if (v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out value)) { }
        else
        {
            Errors.Add(new ValidationError(["body", name], "value is not a valid integer", "type_error.integer"));
            return fallback;
        }
        return Range(name, value, min, max);
    }

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue) => (int)Long(name, fallback, min, max);

    public double Double(string name, double fallback, double min = double.MinValue, double max = double.MaxValue)
    {
        if (!Has(name)) return Remember(name, fallback);
        var v = body.GetProperty(name);
        double value;
        if (v.ValueKind == JsonValueKind.Number) value = v.GetDouble();
        else if (v.ValueKind == JsonValueKind.String && double.TryParse(v.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out value)) { }
        else
        {
            Errors.Add(new ValidationError(["body", name], "value is not a valid float", "type_error.float"));
            return fallback;
        }
        if (value < min || value > max || !double.IsFinite(value))
        {
            Errors.Add(new ValidationError(["body", name], $"ensure this value is between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}", "value_error.number.not_in_range"));
            return fallback;
        }
        return Remember(name, value);
    }

    public bool Bool(string name, bool fallback)
    {
        if (!Has(name)) return Remember(name, fallback);
        var v = body.GetProperty(name);
        if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) return Remember(name, v.GetBoolean());
        if (v.ValueKind == JsonValueKind.String && bool.TryParse(v.GetString(), out var b)) return Remember(name, b);
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) && i is 0 or 1) return Remember(name, i == 1);
        Errors.Add(new ValidationError(["body", name], "value could not be parsed to a boolean", "type_error.bool"));
        return fallback;
    }

    /// <summary>An error for a field this server understands but cannot honour (hires fix, masks, scripts).</summary>
    public void Unsupported(string name, string why) =>
        Errors.Add(new ValidationError(["body", name], why, "value_error.unsupported"));

    public void Invalid(string name, string why) => Errors.Add(new ValidationError(["body", name], why, "value_error"));

    private long Range(string name, long value, long min, long max)
    {
        if (value >= min && value <= max) return Remember(name, value);
        Errors.Add(new ValidationError(["body", name],
            value < min ? $"ensure this value is greater than or equal to {min}" : $"ensure this value is less than or equal to {max}",
            value < min ? "value_error.number.not_ge" : "value_error.number.not_le"));
        return Math.Clamp(value, min, max);
    }

    private T Remember<T>(string name, T value)
    {
        Echo[name] = value;
        return value;
    }
}
