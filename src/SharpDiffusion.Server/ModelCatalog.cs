using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Hashing;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server;

/// <summary>A checkpoint of the models folder, named as A1111 names it.</summary>
/// <param name="Name">Path relative to Stable-diffusion/ with '/' separators ("sub/model.safetensors").</param>
/// <param name="ModelName">The name without extension, '/' replaced by '_' (A1111's model_name).</param>
/// <param name="ConfigPath">A yaml beside the file (A1111's config), else our golden-style NAME.config.json, else null.</param>
public sealed record CheckpointEntry(string Name, string ModelName, string FullPath, string? ConfigPath);

/// <summary>
/// What the models folder holds, listed the way A1111 lists it. Every name a client sends is looked up in these
/// listings, never joined onto a path: "../x", absolute paths and links that lead out of the folder cannot name a file.
/// </summary>
public sealed class ModelCatalog
{
    private static readonly string[] CheckpointExtensions = [".safetensors", ".ckpt"];
    private static readonly string[] VaeExtensions = [".safetensors", ".pt", ".ckpt"];
    public ModelCatalog(string modelsDir, string? hashCacheFile = null)
    {
        Folder = new ModelsFolder(modelsDir);
        Hasher = new FileHasher(new HashCache(hashCacheFile));
    }

    /// <summary>The one hashing service of the server: listings read it, the generation service fills it.</summary>
    public FileHasher Hasher { get; }

    public ModelsFolder Folder { get; }

    public IReadOnlyList<CheckpointEntry> Checkpoints()
    {
        var root = Folder.CheckpointsFolder;
        return FilesUnder(root, CheckpointExtensions)
            .Where(f => !IsVaeFileName(f))
            .Select(f =>
            {
                var name = Path.GetRelativePath(root, f).Replace('\\', '/');
                var modelName = Path.ChangeExtension(name, null).Replace('/', '_');
                return new CheckpointEntry(name, modelName, f, ConfigBeside(f));
            })
            .ToList();
    }

    /// <summary>
    /// The checkpoint a client means by <paramref name="name"/>: A1111's title "name [hash]", the name, the model_name,
    /// the stem, or a short hash; null when nothing in the folder matches.
    /// </summary>
    public CheckpointEntry? FindCheckpoint(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return null;
        var wanted = A1111Infotext.NameOfTitle(name);
        var all = Checkpoints();
        return all.FirstOrDefault(c => c.Name == wanted)
            ?? all.FirstOrDefault(c => c.ModelName == wanted)
            ?? all.FirstOrDefault(c => Path.GetFileNameWithoutExtension(c.Name) == wanted)
            ?? all.FirstOrDefault(c => CachedHashes(c.FullPath) is { } h && (h.Short == wanted || h.Sha256 == wanted));
    }

    /// <summary>A1111's title: "name [short hash]" once the file has been hashed, else the bare name.</summary>
    public string Title(CheckpointEntry entry) => CachedHashes(entry.FullPath) is { } h ? $"{entry.Name} [{h.Short}]" : entry.Name;

    /// <summary>VAE files by file name (A1111's vae_dict): VAE/ recursively, then *.vae.* files among the checkpoints.</summary>
    public IReadOnlyDictionary<string, string> Vaes()
    {
        var byName = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in FilesUnder(Folder.VaeFolder, VaeExtensions)) byName[Path.GetFileName(file)] = file;
        foreach (var file in FilesUnder(Folder.CheckpointsFolder, VaeExtensions).Where(IsVaeFileName)) byName[Path.GetFileName(file)] = file;
        return byName;
    }

    public IReadOnlyDictionary<string, string> Loras() => InsideRoot(Folder.Loras());

    public IReadOnlyDictionary<string, string> Hypernetworks() => InsideRoot(Folder.Hypernetworks());

    /// <summary>ControlNet files under <c>ControlNet/</c> by name, inside the folder only.</summary>
    public IReadOnlyDictionary<string, string> ControlNets() => InsideRoot(Folder.ControlNets());

    /// <summary>sd-webui-controlnet's model titles: "name [sha256:8]" once hashed, else the name (listing never hashes).</summary>
    public IReadOnlyList<string> ControlNetTitles() => ControlNets()
        .Select(c => CachedHashes(c.Value) is { } h ? $"{c.Key} [{h.Sha256[..8]}]" : c.Key).Order(StringComparer.Ordinal).ToList();

    /// <summary>A ControlNet by title ("name [hash8]") or name; null when the models folder has none of that name.</summary>
    public string? FindControlNet(string title) =>
        ControlNets().TryGetValue(A1111Infotext.NameOfTitle(title), out var path) ? path : null;

    /// <summary>ESRGAN/Real-ESRGAN files (ESRGAN/, RealESRGAN/, upscalers/), the first of each name, inside the folder only.</summary>
    public IReadOnlyList<UpscalerFile> Upscalers() => Directory.Exists(Folder.Root)
        ? UpscalerFolder.List(Folder.Root).Where(u => IsInside(u.Path, Folder.Root)).DistinctBy(u => u.Name).ToList()
        : [];

    /// <summary>Hashes from the cache only (A1111 too lists only what it has hashed: listing never reads whole files).</summary>
    public ModelHashes? CachedHashes(string path) => Hasher.Cached(path);

    /// <summary>Hashes, computed and cached on first use (a loaded checkpoint, a VAE in use).</summary>
    public ModelHashes Hashes(string path)
    {
        var hashes = Hasher.Get(path);
        Hasher.Save();
        return hashes;
    }

    private static bool IsVaeFileName(string path) =>
        Path.GetFileNameWithoutExtension(path).EndsWith(".vae", StringComparison.OrdinalIgnoreCase);

    private static string? ConfigBeside(string checkpoint)
    {
        var stem = Path.Combine(Path.GetDirectoryName(checkpoint)!, Path.GetFileNameWithoutExtension(checkpoint));
        foreach (var candidate in new[] { stem + ".yaml", stem + ".yml", stem + ".config.json" })
            if (File.Exists(candidate)) return candidate;
        return null;
    }

    private IReadOnlyDictionary<string, string> InsideRoot(IReadOnlyDictionary<string, string> files) =>
        files.Where(f => IsInside(f.Value, Folder.Root)).ToDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal);

    private IEnumerable<string> FilesUnder(string folder, string[] extensions)
    {
        if (!Directory.Exists(folder) || !IsInside(folder, Folder.Root)) return [];
        return Directory.EnumerateFiles(folder, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true })
            .Where(f => extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .Where(f => IsInside(f, Folder.Root))
            .Order(StringComparer.Ordinal);
    }

    /// <summary>True when the file, with every link on its way resolved, lies under <paramref name="root"/>.</summary>
    internal static bool IsInside(string path, string root)
    {
        try
        {
            var real = RealPath(Path.GetFullPath(path));
            var realRoot = RealPath(Path.GetFullPath(root)).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
            return real.StartsWith(realRoot, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The path with symbolic links resolved component by component (links inside sub-folders too).</summary>
    private static string RealPath(string fullPath)
    {
        var root = Path.GetPathRoot(fullPath)!;
        var current = root;
        foreach (var part in fullPath[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(current) ? new DirectoryInfo(current) : new FileInfo(current);
            if (info.LinkTarget != null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
                current = RealPath(Path.GetFullPath(target.FullName));
        }
        return current;
    }
}
