using System.Globalization;
using System.Text.Json;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Hypernetworks;

/// <summary>
/// The layer description of an A1111 hypernetwork, as <c>Hypernetwork.load</c> reads it from the file with its
/// defaults for keys older files lack: layer structure [1, 2, 1], no activation, no layer norm, activate output
/// true, dropout from <c>use_dropout</c>/<c>last_layer_dropout</c>.
/// </summary>
public sealed record HypernetworkStructure
{
    /// <summary>Layer widths as multiples of the module width; starts and ends with 1.</summary>
    public IReadOnlyList<double> LayerStructure { get; init; } = new[] { 1.0, 2.0, 1.0 };

    /// <summary>A1111's <c>activation_func</c>; null or "linear" = none.</summary>
    public string? ActivationFunc { get; init; }

    /// <summary>LayerNorm after every Linear (also the last).</summary>
    public bool IsLayerNorm { get; init; }

    /// <summary>Activation after the last Linear too.</summary>
    public bool ActivateOutput { get; init; } = true;

    private readonly IReadOnlyList<double>? _dropoutStructure;

    /// <summary>
    /// Dropout probability after each layer (index i + 1 follows Linear i); dropout is identity at inference but
    /// occupies a Sequential index. Default: no dropout anywhere.
    /// </summary>
    public IReadOnlyList<double> DropoutStructure
    {
        get => _dropoutStructure ?? new double[LayerStructure.Count];
        init => _dropoutStructure = value;
    }

    /// <summary>Reads the structure from flattened pickle metadata (<c>layer_structure</c>, <c>activation_func</c>, ...).</summary>
    public static HypernetworkStructure FromMetadata(IModelFile file)
    {
        var m = file.Metadata;
        var layers = NumberList(file, "layer_structure") ?? new[] { 1.0, 2.0, 1.0 };
        var dropout = NumberList(file, "dropout_structure");
        bool useDropout = dropout is not null && dropout.Any(d => d != 0) || (Bool(file, "use_dropout") ?? false);
        bool lastLayerDropout = Bool(file, "last_layer_dropout") ?? false;
        var structure = new HypernetworkStructure
        {
            LayerStructure = layers,
            ActivationFunc = m.TryGetValue("activation_func", out var act) && act != "null" ? act : null,
            IsLayerNorm = Bool(file, "is_layer_norm") ?? false,
            ActivateOutput = Bool(file, "activate_output") ?? true,
            DropoutStructure = dropout ?? ParseDropoutStructure(layers, useDropout, lastLayerDropout),
        };
        var problem = structure.Problem();
        if (problem is not null) throw new InvalidModelFileException(file.Path, problem);
        return structure;
    }

    /// <summary>A1111's <c>parse_dropout_structure</c>: [0, 0.3 × (n − 3), 0.3 if last-layer dropout else 0, 0], or all zeros.</summary>
    public static IReadOnlyList<double> ParseDropoutStructure(IReadOnlyList<double> layerStructure, bool useDropout, bool lastLayerDropout)
    {
        if (!useDropout) return new double[layerStructure.Count];
        var values = new List<double> { 0 };
        values.AddRange(Enumerable.Repeat(0.3, Math.Max(0, layerStructure.Count - 3)));
        values.Add(lastLayerDropout ? 0.3 : 0);
        values.Add(0);
        return values;
    }

    /// <summary>What A1111 would reject about this structure; null when it can be built.</summary>
    public string? Problem()
    {
        if (LayerStructure.Count < 2) return $"hypernetwork layer_structure {Describe(LayerStructure)} needs at least two entries";
        if (LayerStructure[0] != 1 || LayerStructure[^1] != 1)
            return $"hypernetwork layer_structure {Describe(LayerStructure)} must start and end with 1";
        if (LayerStructure.Any(x => !(x > 0) || double.IsInfinity(x))) return $"hypernetwork layer_structure {Describe(LayerStructure)} has a non-positive entry";
        if (DropoutStructure.Count < LayerStructure.Count)
            return $"hypernetwork dropout_structure {Describe(DropoutStructure)} is shorter than layer_structure {Describe(LayerStructure)}";
        if (DropoutStructure.Any(d => d < 0 || d >= 1)) return $"hypernetwork dropout_structure {Describe(DropoutStructure)} must hold probabilities in [0, 1)";
        if (!HypernetworkActivation.IsSupported(ActivationFunc)) return $"hypernetwork uses an unsupported activation function: {ActivationFunc}";
        return null;
    }

    private static string Describe(IReadOnlyList<double> values) =>
        "[" + string.Join(", ", values.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "]";

    private static bool? Bool(IModelFile file, string key)
    {
        if (!file.Metadata.TryGetValue(key, out var text) || text == "null") return null;
        if (bool.TryParse(text, out var value)) return value;
        // Python truthiness of a number stored where a bool is expected.
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)) return number != 0;
        throw new InvalidModelFileException(file.Path, $"hypernetwork {key} is \"{text}\", not true or false");
    }

    private static double[]? NumberList(IModelFile file, string key)
    {
        if (!file.Metadata.TryGetValue(key, out var text) || text == "null") return null;
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind != JsonValueKind.Array) throw new JsonException("not a list");
            return doc.RootElement.EnumerateArray().Select(e => e.GetDouble()).ToArray();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidModelFileException(file.Path, $"hypernetwork {key} is \"{text}\", not a list of numbers");
        }
    }
}
