using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpDiffusion.Server;

/// <summary>
/// A1111's <c>/sdapi/v1/options</c>: the settings this server acts on (checkpoint, VAE, CLIP skip, sample format)
/// plus any other key a client sets, kept and returned as given (clients round-trip the whole dict).
/// </summary>
public sealed class ServerSettings(ModelCatalog catalog)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, JsonNode?> _other = new(StringComparer.Ordinal);
    private CheckpointEntry? _checkpoint;

    public string SdVae { get; private set; } = "Automatic";
    public int ClipStopAtLastLayers { get; private set; } = 1;
    public string SamplesFormat { get; private set; } = "png";

    /// <summary>The selected checkpoint; the first of the folder until a client picks one (as A1111 starts).</summary>
    public CheckpointEntry? Checkpoint
    {
        get
        {
            lock (_lock)
            {
                if (_checkpoint != null && File.Exists(_checkpoint.FullPath)) return _checkpoint;
                return _checkpoint = catalog.Checkpoints().FirstOrDefault();
            }
        }
    }

    public Dictionary<string, object?> Snapshot()
    {
        var checkpoint = Checkpoint;
        lock (_lock)
        {
            var options = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var (key, value) in _other) options[key] = value?.DeepClone();
            options["sd_model_checkpoint"] = checkpoint == null ? null : catalog.Title(checkpoint);
            options["sd_checkpoint_hash"] = checkpoint == null ? null : catalog.CachedHashes(checkpoint.FullPath)?.Sha256;
            options["sd_vae"] = SdVae;
            options["CLIP_stop_at_last_layers"] = ClipStopAtLastLayers;
            options["samples_format"] = SamplesFormat;
            return options;
        }
    }

    /// <summary>Applies a partial or whole options dict; returns the first problem (field, message) or null.</summary>
    public (string Field, string Message)? Apply(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object) return ("body", "an object of option names to values is expected");
        CheckpointEntry? checkpoint = null;
        string? vae = null;
        int? clipSkip = null;
        string? format = null;
        foreach (var property in body.EnumerateObject())
        {
            var value = property.Value;
            switch (property.Name)
            {
                case "sd_model_checkpoint" when value.ValueKind == JsonValueKind.String:
                    checkpoint = catalog.FindCheckpoint(value.GetString());
                    if (checkpoint == null) return (property.Name, $"model '{value.GetString()}' not found");
                    break;
                case "sd_vae" when value.ValueKind == JsonValueKind.String:
                    vae = value.GetString()!;
                    if (vae is not ("Automatic" or "None") && !catalog.Vaes().ContainsKey(vae)) return (property.Name, $"VAE '{vae}' not found");
                    break;
                case "CLIP_stop_at_last_layers":
                    if (!(value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var skip) && skip is >= 1 and <= 12)
                        && !(value.ValueKind == JsonValueKind.String && int.TryParse(value.GetString(), out skip) && skip is >= 1 and <= 12))
                        return (property.Name, "an integer from 1 to 12 is expected");
                    clipSkip = skip;
                    break;
                case "samples_format" when value.ValueKind == JsonValueKind.String:
                    format = value.GetString()!.ToLowerInvariant();
                    if (format != "png") return (property.Name, "only png is written by this server");
                    break;
                case "sd_model_checkpoint" or "sd_vae" or "samples_format" or "sd_checkpoint_hash":
                    break; // null or a read-only value echoed back by a client that round-trips the dict
                default:
                    lock (_lock) _other[property.Name] = JsonNode.Parse(value.GetRawText());
                    break;
            }
        }
        // Selecting a checkpoint hashes it (once, cached), as A1111 does when it loads one: its title gains the hash.
        if (checkpoint != null) catalog.Hashes(checkpoint.FullPath);
        lock (_lock)
        {
            if (checkpoint != null) _checkpoint = checkpoint;
            if (vae != null) SdVae = vae;
            if (clipSkip != null) ClipStopAtLastLayers = clipSkip.Value;
            if (format != null) SamplesFormat = format;
        }
        return null;
    }

    /// <summary>The VAE file a job uses for a sd_vae value: null for "Automatic"/"None" (the checkpoint's own, or NAME.vae.* beside it).</summary>
    public string? VaePath(string? sdVae = null)
    {
        var name = sdVae ?? SdVae;
        return name is "Automatic" or "None" ? null : catalog.Vaes().GetValueOrDefault(name);
    }
}
