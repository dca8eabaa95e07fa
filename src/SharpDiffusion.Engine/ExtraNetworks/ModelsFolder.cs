namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// An A1111 models folder (<c>--models-dir</c>): <c>Stable-diffusion/</c>, <c>Lora/</c>, <c>LyCORIS/</c>,
/// <c>embeddings/</c>, <c>hypernetworks/</c>, <c>VAE/</c>. Networks are found by file stem, searched recursively, with
/// A1111's rules: the name is case-sensitive (a Python dict key), LoRAs are <c>.pt/.ckpt/.safetensors</c> under
/// <c>Lora/</c> then <c>LyCORIS/</c>, hypernetworks are <c>.pt</c>, and when two files share a stem the one listed
/// last wins (A1111 overwrites its dict entry).
/// </summary>
public sealed class ModelsFolder
{
    private static readonly string[] LoraExtensions = [".pt", ".ckpt", ".safetensors"];
    private static readonly string[] HypernetworkExtensions = [".pt"];
    private static readonly string[] ControlNetExtensions = [".safetensors", ".pth", ".pt", ".ckpt", ".bin"];

    public ModelsFolder(string root)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"models folder {root} does not exist");
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }
    public string CheckpointsFolder => Path.Combine(Root, "Stable-diffusion");
    public string LoraFolder => Path.Combine(Root, "Lora");
    public string LyCorisFolder => Path.Combine(Root, "LyCORIS");
    public string EmbeddingsFolder => Path.Combine(Root, "embeddings");
    public string HypernetworksFolder => Path.Combine(Root, "hypernetworks");
    public string VaeFolder => Path.Combine(Root, "VAE");
    public string ControlNetFolder => Path.Combine(Root, "ControlNet");

    /// <summary>The LoRA/LyCORIS file whose stem is <paramref name="name"/>, or null.</summary>
    public string? FindLora(string name) => FindByStem(name, LoraExtensions, LoraFolder, LyCorisFolder);

    /// <summary>The hypernetwork file whose stem is <paramref name="name"/>, or null.</summary>
    public string? FindHypernetwork(string name) => FindByStem(name, HypernetworkExtensions, HypernetworksFolder);

    /// <summary>Every LoRA/LyCORIS file by name (stem), as A1111 lists them.</summary>
    public IReadOnlyDictionary<string, string> Loras() => ListByStem(LoraExtensions, LoraFolder, LyCorisFolder);

    /// <summary>Every hypernetwork file by name (stem).</summary>
    public IReadOnlyDictionary<string, string> Hypernetworks() => ListByStem(HypernetworkExtensions, HypernetworksFolder);

    /// <summary>Every ControlNet file under <c>ControlNet/</c> by name (stem), as sd-webui-controlnet lists them.</summary>
    public IReadOnlyDictionary<string, string> ControlNets() => ListByStem(ControlNetExtensions, ControlNetFolder);

    /// <summary>The ControlNet whose stem is <paramref name="name"/>, or null.</summary>
    public string? FindControlNet(string name) => FindByStem(name, ControlNetExtensions, ControlNetFolder);

    private static string? FindByStem(string name, string[] extensions, params string[] folders) =>
        ListByStem(extensions, folders).TryGetValue(name, out var path) ? path : null;

    private static Dictionary<string, string> ListByStem(string[] extensions, params string[] folders)
    {
        var byName = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var folder in folders)
        {
            if (!Directory.Exists(folder)) continue;
            var files = Directory.EnumerateFiles(folder, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true })
                .Where(f => extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
                .Order(StringComparer.Ordinal);
            foreach (var file in files) byName[Path.GetFileNameWithoutExtension(file)] = file;
        }
        return byName;
    }
}
