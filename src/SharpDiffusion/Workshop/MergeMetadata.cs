using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpDiffusion.Formats;
using SharpDiffusion.Hashing;

namespace SharpDiffusion.Workshop;

/// <summary>
/// The <c>__metadata__</c> of a merged model, as A1111's run_modelmerger writes it with its defaults ("Save metadata",
/// "Add merge recipe metadata" and "Copy metadata from merged models" on): the safetensors metadata of A, then B,
/// then C, then <c>format</c> = <c>pt</c>, <c>sd_merge_recipe</c> (JSON: hashes, interp_method, multiplier, ...) and
/// <c>sd_merge_models</c> (JSON: sha256 -> name, legacy_hash, that model's own recipe, plus its own
/// <c>sd_merge_models</c>). The recipe's <c>type</c> is ours; <c>precision</c> and <c>block_weights</c> are additions.
/// </summary>
internal static class MergeMetadata
{
    public sealed record Input(string Path, IModelFile File, ModelHashes Hashes);

    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Dictionary<string, string> Build(MergeOptions options, Input a, Input b, Input? c,
        bool isInpainting, bool isInstructPix2Pix)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var input in new[] { a, b, c })
        {
            if (input?.File.Format != ModelFormat.Safetensors) continue;
            foreach (var (key, value) in input.File.Metadata) metadata[key] = value;
        }
        metadata["format"] = "pt";

        var recipe = new JsonObject
        {
            ["type"] = "sharpdiffusion",
            ["primary_model_hash"] = a.Hashes.Sha256,
            ["secondary_model_hash"] = b.Hashes.Sha256,
            ["tertiary_model_hash"] = c?.Hashes.Sha256,
            ["interp_method"] = options.Mode.A1111Name(),
            ["multiplier"] = options.Multiplier,
            ["save_as_half"] = options.Precision == TensorDType.F16,
            ["custom_name"] = System.IO.Path.GetFileNameWithoutExtension(options.Output),
            ["bake_in_vae"] = options.Vae == null ? "None" : System.IO.Path.GetFileName(options.Vae),
            ["discard_weights"] = "",
            ["is_inpainting"] = isInpainting,
            ["is_instruct_pix2pix"] = isInstructPix2Pix,
            ["precision"] = options.Precision is { } p ? Precision.Name(p) : null,
            ["block_weights"] = options.BlockWeights == null ? null : new JsonArray(options.BlockWeights.Values.Select(v => (JsonNode?)v).ToArray()),
        };
        metadata["sd_merge_recipe"] = recipe.ToJsonString(Json);

        var models = new JsonObject();
        foreach (var input in new[] { a, b, c })
        {
            if (input == null) continue;
            models[input.Hashes.Sha256] = new JsonObject
            {
                ["name"] = System.IO.Path.GetFileName(input.Path),
                ["legacy_hash"] = input.Hashes.Legacy,
                ["sd_merge_recipe"] = ParseObject(input.File, "sd_merge_recipe"),
            };
            if (ParseObject(input.File, "sd_merge_models") is JsonObject earlier)
                foreach (var (hash, entry) in earlier.ToList())
                {
                    earlier.Remove(hash);
                    models[hash] = entry;
                }
        }
        metadata["sd_merge_models"] = models.ToJsonString(Json);
        return metadata;
    }

    /// <summary>A metadata value that holds a JSON object (A1111 parses values starting with '{'); null otherwise.</summary>
    private static JsonObject? ParseObject(IModelFile file, string key)
    {
        if (file.Format != ModelFormat.Safetensors || !file.Metadata.TryGetValue(key, out var text) || !text.StartsWith('{')) return null;
        try
        {
            return JsonNode.Parse(text) as JsonObject;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
