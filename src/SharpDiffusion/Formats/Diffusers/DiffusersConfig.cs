using System.Text.Json;

namespace SharpDiffusion.Formats.Diffusers;

/// <summary>Reads a diffusers JSON config (model_index.json, config.json, scheduler_config.json).</summary>
internal static class DiffusersConfig
{
    public static JsonElement ReadObject(string file)
    {
        try
        {
            var bytes = File.ReadAllBytes(file).AsMemory();
            if (bytes.Span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..]; // UTF-8 BOM some editors add
            using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 32, AllowTrailingCommas = true });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidModelFileException(file, "is not a JSON object");
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidModelFileException(file, "is not valid JSON: " + e.Message, e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidModelFileException(file, "cannot read: " + e.Message, e);
        }
    }

    /// <summary>
    /// Adds every scalar entry as <c>prefix + key</c>: strings raw, numbers as written, booleans true/false,
    /// null as <c>null</c>; lists as compact JSON. Nested objects are left out (they are not settings one reads
    /// at a glance, and would flood the metadata).
    /// </summary>
    public static void AddScalars(JsonElement config, string prefix, IDictionary<string, string> metadata)
    {
        foreach (var prop in config.EnumerateObject())
        {
            string? value = ScalarText(prop.Value);
            if (value != null) metadata[prefix + prop.Name] = value;
        }
    }

    public static string? ScalarText(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Null => "null",
        JsonValueKind.Array => JsonSerializer.Serialize(value),
        _ => null,
    };

    public static string? GetString(JsonElement config, string key) =>
        config.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
