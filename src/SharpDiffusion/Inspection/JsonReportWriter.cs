using SharpDiffusion.Architectures;
using System.Text.Encodings.Web;
using System.Text.Json;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>
/// Writes <see cref="ModelReport"/>s as JSON Lines (one compact object per line, snake_case fields).
/// Always present: <c>path, format, size_bytes, kind, base, components, precision, parameters, tensors, evidence,
/// metadata</c>. When they apply: <c>compatible, input_channels, variant, ema, trigger_words, lora, embedding,
/// hypernetwork, hashes, error</c>. An unreadable file has <c>kind: "invalid"</c> and
/// <c>error: {kind: "invalid", message}</c>. Metadata values longer than <see cref="MaxMetadataValueChars"/> are cut
/// (kohya's ss_tag_frequency and ss_dataset_dirs can run to megabytes) with a note of their full length.
/// </summary>
public static class JsonReportWriter
{
    public const int MaxMetadataValueChars = 2000;

    private static readonly JsonWriterOptions Options = new()
    {
        Indented = false,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string ToJsonLine(ModelReport report)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, Options)) Write(writer, report);
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static void WriteLine(TextWriter output, ModelReport report) => output.WriteLine(ToJsonLine(report));

    public static void Write(Utf8JsonWriter w, ModelReport report)
    {
        var c = report.Classification;
        w.WriteStartObject();
        w.WriteString("path", report.Path);
        if (report.Format is { } format) w.WriteString("format", format.WireName());
        else w.WriteNull("format");
        w.WriteNumber("size_bytes", report.SizeBytes);
        w.WriteString("kind", report.IsValid ? (c?.Kind ?? ModelKind.Unknown).WireName() : "invalid");
        if (c?.Base is { } family) w.WriteString("base", family.WireName());
        else w.WriteNull("base");
        WriteStrings(w, "components", c?.Components ?? []);
        if (c?.Precision != null) w.WriteString("precision", c.Precision);
        else w.WriteNull("precision");
        w.WriteNumber("parameters", c?.Parameters ?? 0);
        w.WriteNumber("tensors", c?.Tensors ?? 0);
        WriteStrings(w, "evidence", c?.Evidence ?? []);
        WriteMetadata(w, report.Metadata);

        if (c != null) WriteOptionalClassification(w, c);
        if (report.Hashes is { } h)
        {
            w.WriteStartObject("hashes");
            w.WriteString("sha256", h.Sha256);
            w.WriteString("short", h.Short);
            w.WriteString("legacy", h.Legacy);
            if (h.AddNet != null) w.WriteString("addnet", h.AddNet);
            else w.WriteNull("addnet");
            w.WriteEndObject();
        }
        if (report.Error != null)
        {
            w.WriteStartObject("error");
            w.WriteString("kind", "invalid");
            w.WriteString("message", report.Error);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void WriteOptionalClassification(Utf8JsonWriter w, ModelClassification c)
    {
        if (c.CompatibleBases.Count > 0) WriteStrings(w, "compatible", c.CompatibleBases.Select(b => b.WireName()));
        if (c.InputChannels is { } channels) w.WriteNumber("input_channels", channels);
        if (c.Variant != null) w.WriteString("variant", c.Variant);
        if (c.HasEma is { } ema) w.WriteBoolean("ema", ema);
        if (c.TriggerWords.Count > 0) WriteStrings(w, "trigger_words", c.TriggerWords);
        if (c.Lora is { } lora)
        {
            w.WriteStartObject("lora");
            w.WriteString("algorithm", lora.Algorithm);
            w.WriteString("style", lora.Style);
            WriteOneOrMany(w, "rank", lora.Ranks.Select(r => (double)r).ToList());
            WriteOneOrMany(w, "alpha", lora.Alphas);
            WriteStrings(w, "targets", lora.Targets);
            w.WriteNumber("modules", lora.Modules);
            if (lora.ConvModules > 0) w.WriteNumber("conv_modules", lora.ConvModules);
            w.WriteEndObject();
        }
        if (c.Embedding is { } emb)
        {
            w.WriteStartObject("embedding");
            w.WriteString("layout", emb.Layout);
            w.WriteNumber("vectors", emb.Vectors);
            WriteNumbers(w, "dims", emb.Dims.Select(d => (double)d));
            if (emb.Token != null) w.WriteString("token", emb.Token);
            else w.WriteNull("token");
            if (emb.Step is { } step) w.WriteNumber("step", step);
            w.WriteEndObject();
        }
        if (c.Hypernetwork is { } hn)
        {
            w.WriteStartObject("hypernetwork");
            WriteNumbers(w, "layer_structure", hn.LayerStructure);
            if (hn.Activation != null) w.WriteString("activation", hn.Activation);
            else w.WriteNull("activation");
            w.WriteBoolean("layer_norm", hn.LayerNorm);
            w.WriteBoolean("dropout", hn.Dropout);
            WriteNumbers(w, "dims", hn.Dims.Select(d => (double)d));
            if (hn.Step is { } step) w.WriteNumber("step", step);
            if (hn.Name != null) w.WriteString("name", hn.Name);
            w.WriteEndObject();
        }
    }

    /// <summary>A single number when there is one distinct value, a list when several, null when none.</summary>
    private static void WriteOneOrMany(Utf8JsonWriter w, string name, IReadOnlyList<double> values)
    {
        var distinct = values.Distinct().Order().ToList();
        if (distinct.Count == 0) w.WriteNull(name);
        else if (distinct.Count == 1) w.WriteNumber(name, distinct[0]);
        else WriteNumbers(w, name, distinct);
    }

    private static void WriteNumbers(Utf8JsonWriter w, string name, IEnumerable<double> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }

    private static void WriteMetadata(Utf8JsonWriter w, IReadOnlyDictionary<string, string> metadata)
    {
        w.WriteStartObject("metadata");
        foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            w.WriteString(key, CapValue(value));
        w.WriteEndObject();
    }

    /// <summary>Cuts a long value, keeping whole UTF-16 pairs, and says how long it was.</summary>
    public static string CapValue(string value)
    {
        if (value.Length <= MaxMetadataValueChars) return value;
        int cut = MaxMetadataValueChars;
        if (char.IsHighSurrogate(value[cut - 1])) cut--;
        return value[..cut] + $"… [{value.Length} chars, truncated]";
    }
}
