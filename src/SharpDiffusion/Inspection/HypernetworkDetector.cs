using SharpDiffusion.Architectures;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>
/// A1111 hypernetworks: per context width two small MLPs (key and value), tensors
/// <c>&lt;dim&gt;.&lt;i&gt;.linear.&lt;j&gt;.weight|bias</c> (current) or <c>&lt;dim&gt;.&lt;i&gt;.linear1|linear2.*</c> (first
/// version). Settings come from the pickle's metadata (<c>layer_structure</c>, <c>activation_func</c>, ...); the
/// layer structure is rebuilt from the linear shapes when the metadata lacks it.
/// </summary>
internal static partial class HypernetworkDetector
{
    [GeneratedRegex(@"^(\d+)\.(\d+)\.linear(?:\.(\d+)|([12]))\.(weight|bias)$", RegexOptions.CultureInvariant)]
    private static partial Regex KeyPattern();

    public static bool TryDetect(TensorIndex index, ModelClassification result)
    {
        if (index.Count == 0) return false;
        var parsed = new List<(int Dim, int Module, int Layer, bool Old, TensorInfo Tensor)>();
        foreach (var t in index.Tensors)
        {
            // Saved optimizer state travels in the same pickle; it says nothing about the network.
            if (t.Name.StartsWith("optimizer_state_dict.", StringComparison.Ordinal)) continue;
            var m = KeyPattern().Match(t.Name);
            if (!m.Success) return false;
            bool old = m.Groups[4].Success;
            int layer = old ? int.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture) : int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
            parsed.Add((int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), layer, old, t));
        }

        if (parsed.Count == 0) return false;
        var details = new HypernetworkDetails();
        result.Kind = ModelKind.Hypernetwork;
        result.Hypernetwork = details;
        details.Dims.AddRange(parsed.Select(p => p.Dim).Distinct().Order());
        bool oldFormat = parsed[0].Old;
        Evidence.Add(result, Evidence.Key(parsed[0].Tensor, oldFormat
            ? "A1111 hypernetwork (first version: linear1/linear2 per context width)"
            : "A1111 hypernetwork MLP layer keyed by context width"));

        int firstDim = details.Dims[0];
        var layers = parsed.Where(p => p.Dim == firstDim && p.Module == 0 && p.Tensor.Name.EndsWith(".weight", StringComparison.Ordinal))
            .OrderBy(p => p.Layer).ToList();
        var linears = layers.Where(p => p.Tensor.Rank == 2).ToList();

        if (ParseStructure(index.Meta("layer_structure")) is { } fromMetadata)
        {
            details.LayerStructure.AddRange(fromMetadata);
            Evidence.Add(result, "metadata layer_structure = " + index.Meta("layer_structure"));
        }
        else if (linears.Count > 0)
        {
            details.LayerStructure.Add(Math.Round((double)linears[0].Tensor.Shape[1] / firstDim, 4));
            foreach (var l in linears) details.LayerStructure.Add(Math.Round((double)l.Tensor.Shape[0] / firstDim, 4));
            Evidence.Add(result, "layer structure [" + string.Join(", ", details.LayerStructure.Select(v => v.ToString(CultureInfo.InvariantCulture)))
                + $"] from the linear shapes of width {firstDim} (no layer_structure metadata)");
        }

        details.Activation = index.Meta("activation_func") ?? (oldFormat ? "linear" : null);
        details.LayerNorm = ParseBool(index.Meta("is_layer_norm")) ?? layers.Any(p => p.Tensor.Rank == 1);
        details.Dropout = ParseBool(index.Meta("use_dropout")) ?? false;
        details.Name = index.Meta("name");
        if (long.TryParse(index.Meta("step"), NumberStyles.Integer, CultureInfo.InvariantCulture, out long step)) details.Step = step;

        var dims = details.Dims;
        var families = ModelArchitectures.FamiliesOfHypernetworkWidths(dims);
        if (families.Count == 1) result.Base = families[0];
        else result.CompatibleBases.AddRange(families);
        Evidence.Add(result, "context widths " + string.Join(", ", dims) + (families.Count > 0
            ? $": {string.Join(", ", families.Select(Evidence.Family))} cross-attention" : ": no cross-attention width that names a family"));
        return true;
    }

    private static List<double>? ParseStructure(string? json)
    {
        if (json == null) return null;
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Array) return null;
            var values = new List<double>();
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (!e.TryGetDouble(out double v)) return null;
                values.Add(v);
            }
            return values.Count > 0 ? values : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static bool? ParseBool(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "true" or "1" => true,
        "false" or "0" => false,
        _ => null,
    };
}
