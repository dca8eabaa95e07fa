using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Diffusers;
using SharpDiffusion.Hashing;

namespace SharpDiffusion.Inspection;

/// <summary>
/// Turns paths into one <see cref="ModelReport"/> per model. A file is inspected whatever its extension; a
/// diffusers folder (pipeline or component) is one model; any other folder is scanned recursively for files with
/// a model extension (.safetensors .sft .ckpt .pt .pth .bin .gguf) and diffusers folders, in ordinal path order.
/// A file that fails to read gives a report with <see cref="ModelReport.Error"/> and the scan continues.
/// </summary>
public sealed class ModelInspector
{
    public static readonly IReadOnlySet<string> ModelExtensions =
        new HashSet<string>(StringComparer.OrdinalIgnoreCase) { ".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".gguf" };

    /// <summary>Compute hashes (sha256, short, legacy, addnet) for single-file models.</summary>
    public bool ComputeHashes { get; init; }

    /// <summary>Where hashes are remembered between runs; null computes every time.</summary>
    public HashCache? Cache { get; init; }

    /// <summary>
    /// Runs a hash computation; lets a caller wrap it (e.g. in a progress bar). Receives the file, its size, and the
    /// computation to run with an optional progress sink (bytes read so far).
    /// </summary>
    public Func<string, long, Func<IProgress<long>?, ModelHashes>, ModelHashes>? HashRunner { get; init; }

    /// <summary>
    /// Lists a folder's entries (files, subfolders); tests replace it to simulate a folder that cannot be read,
    /// which they cannot make with permissions when they run as root.
    /// </summary>
    internal Func<string, FolderListing> ListFolder { get; init; } = FolderListing.Read;

    /// <summary>
    /// Reports for every model found under <paramref name="paths"/>, lazily, in order. Without hashing, files are
    /// read on every core (header parsing and classification are CPU work); hashing stays sequential, it is disk-bound.
    /// A folder that cannot be listed (permission denied, I/O error) is one invalid report and the scan goes on.
    /// </summary>
    public IEnumerable<ModelReport> Inspect(IEnumerable<string> paths)
    {
        var models = paths.SelectMany(Targets);
        if (ComputeHashes) return models.Select(InspectTarget);
        return models.AsParallel().AsOrdered().WithDegreeOfParallelism(Environment.ProcessorCount).Select(InspectTarget);
    }

    public IEnumerable<ModelReport> Inspect(string path) => Inspect(new[] { path });

    /// <summary>A model to inspect, or a path that could not be (a missing path, a folder that cannot be listed).</summary>
    private readonly record struct Target(string Path, string? Error = null);

    /// <summary>The models a command-line path stands for: itself, the models under a folder, or a missing path.</summary>
    private IEnumerable<Target> Targets(string path)
    {
        if (File.Exists(path)) return [new Target(path)];
        if (Directory.Exists(path)) return FindModels(path);
        return [new Target(path, $"{path}: no such file or folder")];
    }

    private ModelReport InspectTarget(Target target) => target.Error != null
        ? new ModelReport { Path = target.Path, Error = target.Error }
        : InspectModel(target.Path);

    /// <summary>Model files and diffusers folders under <paramref name="folder"/> (the folder itself when it is one).</summary>
    private IEnumerable<Target> FindModels(string folder)
    {
        bool diffusers = DiffusersFolder.IsDiffusersFolder(folder);
        // A lone diffusers component folder's files are that component's weights, not models of their own.
        if (diffusers) yield return new Target(folder);
        if (diffusers && !File.Exists(Path.Combine(folder, DiffusersFolder.ModelIndexFile))) yield break;

        FolderListing listing;
        string? error = null;
        try
        {
            listing = ListFolder(folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            listing = FolderListing.Empty;
            error = e is UnauthorizedAccessException
                ? $"{folder}: permission denied: the folder cannot be listed"
                : $"{folder}: the folder cannot be listed: {e.Message}";
        }
        if (error != null)
        {
            yield return new Target(folder, error);
            yield break;
        }
        // Hub repositories often keep single-file checkpoints beside a pipeline's model_index.json; those are models too.
        foreach (var file in listing.Files.Where(f => ModelExtensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal))
            yield return new Target(file);
        if (diffusers) yield break;
        foreach (var sub in listing.Folders.Order(StringComparer.Ordinal))
        {
            // Symbolic links to folders could loop; models inside them are reached through their real path.
            if (new DirectoryInfo(sub).LinkTarget != null) continue;
            foreach (var model in FindModels(sub)) yield return model;
        }
    }

    /// <summary>Inspects one model file or diffusers folder; never throws for bad content.</summary>
    public ModelReport InspectModel(string path)
    {
        IModelFile file;
        try
        {
            file = ModelFileReader.Open(path);
        }
        catch (InvalidModelFileException e)
        {
            return new ModelReport { Path = path, SizeBytes = SizeOf(path), Error = e.Message };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new ModelReport { Path = path, SizeBytes = SizeOf(path), Error = $"{path}: {e.Message}" };
        }

        using (file)
        {
            ModelClassification classification;
            try
            {
                classification = ModelClassifier.Classify(file);
            }
            catch (InvalidModelFileException e)
            {
                return new ModelReport { Path = path, Format = file.Format, SizeBytes = file.SizeBytes, Metadata = file.Metadata, Error = e.Message };
            }
            ModelHashes? hashes = null;
            if (ComputeHashes && file.Format != ModelFormat.Diffusers) hashes = TryHash(path, file.SizeBytes);
            return new ModelReport
            {
                Path = path,
                Format = file.Format,
                SizeBytes = file.SizeBytes,
                Classification = classification,
                Metadata = file.Metadata,
                Hashes = hashes,
            };
        }
    }

    /// <summary>Hashes, or null when the file cannot be read to the end (it was readable enough to classify).</summary>
    private ModelHashes? TryHash(string path, long size)
    {
        try
        {
            return Hash(path, size);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private ModelHashes Hash(string path, long size)
    {
        ModelHashes Compute(string p)
        {
            var runner = HashRunner ?? ((_, _, compute) => compute(null));
            return runner(p, size, progress => ModelHashes.Compute(p, progress));
        }
        return Cache != null ? Cache.GetOrCompute(path, Compute) : Compute(path);
    }

    private static long SizeOf(string path)
    {
        try
        {
            return File.Exists(path) ? new FileInfo(path).Length : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }
}

/// <summary>The entries of one folder: full paths of its files and of its subfolders.</summary>
internal sealed record FolderListing(IReadOnlyList<string> Files, IReadOnlyList<string> Folders)
{
    public static readonly FolderListing Empty = new([], []);

    public static FolderListing Read(string folder) => new(Directory.GetFiles(folder), Directory.GetDirectories(folder));
}
