using System.Text.Json;

namespace SharpDiffusion.Formats.Diffusers;

/// <summary>
/// Finds the weight files of one diffusers component folder. Preference: safetensors over .bin, the plain file
/// over the fp16 variant, a single file over shards of the same kind.
/// </summary>
internal static class DiffusersWeights
{
    private static readonly string[] BaseNames = ["diffusion_pytorch_model", "model", "pytorch_model"];

    /// <summary>Candidate names in preference order; <c>{0}</c> is a base name. Index files list shards.</summary>
    private static readonly string[] Patterns =
    [
        "{0}.safetensors", "{0}.safetensors.index.json",
        "{0}.fp16.safetensors", "{0}.safetensors.index.fp16.json", "{0}.fp16.safetensors.index.json",
        "{0}.bin", "{0}.bin.index.json",
        "{0}.fp16.bin", "{0}.bin.index.fp16.json", "{0}.fp16.bin.index.json",
    ];

    /// <summary>The weight files (full paths, in shard order), or null when the folder has none.</summary>
    public static WeightFiles? Find(string folder)
    {
        foreach (var pattern in Patterns)
        {
            foreach (var baseName in BaseNames)
            {
                string candidate = Path.Combine(folder, string.Format(pattern, baseName));
                if (!File.Exists(candidate)) continue;
                return candidate.EndsWith(".json", StringComparison.Ordinal)
                    ? new WeightFiles(ReadShardIndex(candidate), candidate)
                    : new WeightFiles([candidate], null);
            }
        }
        return null;
    }

    public static bool HasWeights(string folder) =>
        Patterns.Any(p => BaseNames.Any(b => File.Exists(Path.Combine(folder, string.Format(p, b)))));

    /// <summary>Shard files named by an index's <c>weight_map</c>, in order of first mention.</summary>
    private static IReadOnlyList<string> ReadShardIndex(string indexFile)
    {
        var weightMap = ReadWeightMap(indexFile);
        string folder = Path.GetDirectoryName(indexFile)!;
        var files = new List<string>();
        foreach (var shard in weightMap.Values.Distinct(StringComparer.Ordinal))
        {
            if (shard.Contains('/') || shard.Contains('\\') || shard.StartsWith('.'))
                throw new InvalidModelFileException(indexFile, $"weight_map names '{shard}', which is not a file in the same folder");
            string full = Path.Combine(folder, shard);
            if (!File.Exists(full)) throw new InvalidModelFileException(indexFile, $"shard '{shard}' named in weight_map is missing");
            files.Add(full);
        }
        if (files.Count == 0) throw new InvalidModelFileException(indexFile, "weight_map is empty");
        return files;
    }

    /// <summary>Tensor name to shard file name, as the index lists it.</summary>
    public static IReadOnlyDictionary<string, string> ReadWeightMap(string indexFile)
    {
        var index = DiffusersConfig.ReadObject(indexFile);
        if (!index.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new InvalidModelFileException(indexFile, "has no weight_map object");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new InvalidModelFileException(indexFile, $"weight_map entry '{entry.Name}' is not a file name");
            result[entry.Name] = entry.Value.GetString()!;
        }
        return result;
    }
}

/// <summary>The files holding one component's weights; <paramref name="IndexFile"/> is set for sharded weights.</summary>
internal sealed record WeightFiles(IReadOnlyList<string> Files, string? IndexFile);
