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
    /// Reports for every model found under <paramref name="paths"/>, lazily, in order. Without hashing, files are
    /// read on every core (header parsing and classification are CPU work); hashing stays sequential, it is disk-bound.
    /// </summary>
    public IEnumerable<ModelReport> Inspect(IEnumerable<string> paths)
    {
        var models = paths.SelectMany(Targets);
        if (ComputeHashes) return models.Select(InspectTarget);
        return models.AsParallel().AsOrdered().WithDegreeOfParallelism(Environment.ProcessorCount).Select(InspectTarget);
    }

    public IEnumerable<ModelReport> Inspect(string path) => Inspect(new[] { path });

    /// <summary>The models a command-line path stands for: itself, the models under a folder, or a missing path.</summary>
    private static IEnumerable<(string Path, bool Missing)> Targets(string path)
    {
        if (File.Exists(path)) return new[] { (path, false) };
        if (Directory.Exists(path)) return FindModels(path).Select(model => (model, false));
        return new[] { (path, true) };
    }

    private ModelReport InspectTarget((string Path, bool Missing) target) => target.Missing
        ? new ModelReport { Path = target.Path, Error = $"{target.Path}: no such file or folder" }
        : InspectModel(target.Path);

    /// <summary>Model files and diffusers folders under <paramref name="folder"/> (the folder itself when it is one).</summary>
    public static IEnumerable<string> FindModels(string folder)
    {
        if (DiffusersFolder.IsDiffusersFolder(folder))
        {
            yield return folder;
            // Hub repositories often keep single-file checkpoints beside the pipeline's model_index.json; those are
            // models of their own. (In a lone component folder the files in it are that component's weights.)
            if (File.Exists(Path.Combine(folder, DiffusersFolder.ModelIndexFile)))
                foreach (var file in ModelFilesIn(folder)) yield return file;
            yield break;
        }
        IEnumerable<string> files, subfolders;
        try
        {
            files = ModelFilesIn(folder);
            subfolders = Directory.GetDirectories(folder).Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            yield break;
        }
        foreach (var file in files) yield return file;
        foreach (var sub in subfolders)
        {
            // Symbolic links to folders could loop; models inside them are reached through their real path.
            if (new DirectoryInfo(sub).LinkTarget != null) continue;
            foreach (var model in FindModels(sub)) yield return model;
        }
    }

    private static List<string> ModelFilesIn(string folder)
    {
        try
        {
            return Directory.GetFiles(folder).Where(f => ModelExtensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return [];
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
