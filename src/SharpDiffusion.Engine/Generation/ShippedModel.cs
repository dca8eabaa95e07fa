namespace SharpDiffusion.Engine.Generation;

/// <summary>
/// Where the model SharpDiffusion ships (sharp-emoji, trained here from scratch) is found, so that <c>generate</c>
/// and <c>serve</c> work with no arguments: <c>$SHARPDIFFUSION_MODEL</c> names a checkpoint; otherwise the A1111-style
/// <c>models/</c> folder (<c>$SHARPDIFFUSION_MODELS_DIR</c>, else the first <c>models/</c> holding the shipped checkpoint
/// in the current folder or above it, else beside the program, as a .NET tool package installs it).
/// </summary>
public static class ShippedModel
{
    public const string FileName = "sharp-emoji.safetensors";
    public const string ModelEnvironment = "SHARPDIFFUSION_MODEL";
    public const string ModelsDirEnvironment = "SHARPDIFFUSION_MODELS_DIR";

    /// <summary>The checkpoint to use when none is given; null when there is none.</summary>
    public static string? CheckpointPath(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var given = environment(ModelEnvironment);
        if (!string.IsNullOrEmpty(given)) return given;
        var folder = ModelsFolder(environment);
        if (folder == null) return null;
        var path = Path.Combine(folder, "Stable-diffusion", FileName);
        return File.Exists(path) ? path : null;
    }

    /// <summary>The default A1111 models folder; null when none is found.</summary>
    public static string? ModelsFolder(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var given = environment(ModelsDirEnvironment);
        if (!string.IsNullOrEmpty(given)) return given;
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "models");
                if (File.Exists(Path.Combine(candidate, "Stable-diffusion", FileName))) return candidate;
            }
        }
        return null;
    }
}
