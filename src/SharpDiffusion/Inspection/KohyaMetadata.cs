using SharpDiffusion.Architectures;
using System.Text.Json;

namespace SharpDiffusion.Inspection;

/// <summary>
/// Training metadata that kohya sd-scripts (<c>ss_*</c>) and the Stability model spec (<c>modelspec.*</c>) write
/// into safetensors headers: network module/dim/alpha/args, base model, trigger words from the tag frequencies.
/// </summary>
internal static class KohyaMetadata
{
    /// <summary>How many dataset tags become trigger words.</summary>
    public const int MaxTriggerWords = 10;

    public static void Apply(TensorIndex index, ModelClassification result, LoraDetails details)
    {
        var module = index.Meta("ss_network_module");
        if (module != null)
        {
            details.NetworkModule = module;
            var dim = index.Meta("ss_network_dim");
            var alpha = index.Meta("ss_network_alpha");
            Evidence.Add(result, $"metadata ss_network_module = {module}" + (dim != null ? $", ss_network_dim = {dim}" : "")
                + (alpha != null ? $", ss_network_alpha = {alpha}" : ""));
        }
        var args = index.Meta("ss_network_args");
        if (args != null && TryParseObject(args, out var argsJson))
        {
            if (argsJson.TryGetProperty("algo", out var algo) && algo.ValueKind == JsonValueKind.String) details.NetworkAlgo = algo.GetString();
            if (argsJson.TryGetProperty("conv_dim", out var convDim)) details.ConvDim = convDim.ToString();
        }
        details.BaseModelName = index.Meta("ss_sd_model_name");
    }

    /// <summary>
    /// Trigger words for any kind of file (kohya also writes ss_tag_frequency into fine-tuned checkpoints):
    /// the modelspec trigger phrase first, then the most frequent dataset tags.
    /// </summary>
    public static void ApplyTriggerWords(TensorIndex index, ModelClassification result)
    {
        if (index.Meta("modelspec.trigger_phrase") is string phrase)
        {
            foreach (var word in phrase.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                if (!result.TriggerWords.Contains(word)) result.TriggerWords.Add(word);
            }
        }
        foreach (var tag in TopTags(index.Meta("ss_tag_frequency")))
        {
            if (result.TriggerWords.Count >= MaxTriggerWords) break;
            if (!result.TriggerWords.Contains(tag)) result.TriggerWords.Add(tag);
        }
    }

    /// <summary>Tags summed over all datasets of <c>ss_tag_frequency</c>, most frequent first (ties: first seen).</summary>
    public static List<string> TopTags(string? tagFrequencyJson)
    {
        var totals = new Dictionary<string, long>(StringComparer.Ordinal);
        var order = new List<string>();
        if (tagFrequencyJson == null || !TryParseObject(tagFrequencyJson, out var root)) return order;
        foreach (var dataset in root.EnumerateObject())
        {
            if (dataset.Value.ValueKind != JsonValueKind.Object) continue;
            foreach (var tag in dataset.Value.EnumerateObject())
            {
                if (!tag.Value.TryGetInt64(out long count)) continue;
                var name = tag.Name.Trim();
                if (name.Length == 0) continue;
                if (!totals.ContainsKey(name)) order.Add(name);
                totals[name] = totals.GetValueOrDefault(name) + count;
            }
        }
        return order.Select((name, i) => (name, i)).OrderByDescending(x => totals[x.name]).ThenBy(x => x.i)
            .Take(MaxTriggerWords).Select(x => x.name).ToList();
    }

    /// <summary>The family named by <c>modelspec.architecture</c> or <c>ss_base_model_version</c> / <c>ss_v2</c>.</summary>
    public static bool FamilyFromMetadata(TensorIndex index, out BaseFamily family, out string evidence)
    {
        if (index.Meta("modelspec.architecture") is string arch && FamilyOfName(arch) is BaseFamily fromArch)
        {
            family = fromArch;
            evidence = "metadata modelspec.architecture = " + arch;
            return true;
        }
        if (index.Meta("ss_base_model_version") is string version && FamilyOfName(version) is BaseFamily fromVersion)
        {
            family = fromVersion;
            evidence = "metadata ss_base_model_version = " + version;
            return true;
        }
        if (string.Equals(index.Meta("ss_v2"), "True", StringComparison.OrdinalIgnoreCase))
        {
            family = BaseFamily.SD2;
            evidence = "metadata ss_v2 = True";
            return true;
        }
        family = default;
        evidence = "";
        return false;
    }

    private static BaseFamily? FamilyOfName(string name) => ModelArchitectures.FamilyOfMetadataName(name);

    private static bool TryParseObject(string json, out JsonElement root)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            root = doc.RootElement.Clone();
            return root.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            root = default;
            return false;
        }
    }
}
