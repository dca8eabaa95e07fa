using System.Text.Json;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// Opens an LDM/sgm model config: the A1111 convention of a ".yaml" beside the checkpoint, or a json document
/// holding the same tree (as tiny_*.config.json do under "ldm_config" / "sgm_config").
/// </summary>
public static class LdmConfigFile
{
    /// <summary>Reads a yaml or json config (sniffed from the content: json starts with '{').</summary>
    public static ConfigTree Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidModelFileException(path, "cannot read the config: " + e.Message, e);
        }
        if (text.TrimStart().StartsWith('{')) return ParseJson(text, path);
        return new ConfigTree(YamlSubsetReader.Parse(text, path), path);
    }

    /// <summary>
    /// The config A1111 would use for a checkpoint: "name.yaml" beside "name.safetensors"/"name.ckpt"; null if none.
    /// </summary>
    public static string? FindBeside(string checkpointPath)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(checkpointPath)) ?? ".";
        var stem = Path.GetFileNameWithoutExtension(checkpointPath);
        foreach (var ext in new[] { ".yaml", ".yml" })
        {
            var candidate = Path.Combine(directory, stem + ext);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    public static ConfigTree ParseJson(string text, string source)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return new ConfigTree(Convert(doc.RootElement), source);
        }
        catch (JsonException e)
        {
            throw new InvalidModelFileException(source, "invalid json config: " + e.Message, e);
        }
    }

    /// <summary>
    /// The LDM tree inside a document: the document itself when it has "model", else its "ldm_config" or
    /// "sgm_config" member (the tiny_*.config.json layout).
    /// </summary>
    public static ConfigTree ModelRoot(ConfigTree tree)
    {
        if (tree.Find("model") != null) return tree;
        foreach (var key in new[] { "ldm_config", "sgm_config" })
        {
            var inner = tree.Find(key);
            if (ConfigTree.IsMap(inner)) return new ConfigTree(inner, tree.Source);
        }
        throw new InvalidModelFileException(tree.Source, "not an LDM model config (no 'model' section)");
    }

    private static object? Convert(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => Convert(p.Value), StringComparer.Ordinal),
        JsonValueKind.Array => e.EnumerateArray().Select(Convert).ToList(),
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };
}
