using System.Text.Json;

namespace SharpDiffusion.Formats.Diffusers;

/// <summary>
/// A diffusers model folder exposed as one model: either a pipeline (model_index.json with unet/, vae/,
/// text_encoder/, text_encoder_2/, transformer/, controlnet/ ... subfolders) or a single component folder
/// (config.json + weights, e.g. a VAE). Tensor names are <c>&lt;component&gt;/&lt;key&gt;</c>; each tensor's
/// <see cref="TensorInfo.StorageKey"/> is the weight file holding it, relative to the folder.
/// </summary>
/// <remarks>
/// Metadata: <c>model_index.&lt;key&gt;</c> for model_index.json entries (component entries such as
/// <c>["diffusers", "UNet2DConditionModel"]</c> as compact JSON), <c>&lt;component&gt;.config.&lt;key&gt;</c> for
/// each component's config scalars (scheduler/ included), <c>&lt;component&gt;.weights</c> (files used),
/// <c>&lt;component&gt;.variant</c> (<c>fp16</c> when only the fp16 variant was present),
/// <c>&lt;component&gt;.metadata.&lt;key&gt;</c> for a weight file's own metadata, and <c>diffusers.components</c>.
/// </remarks>
public sealed class DiffusersFolder : IModelFile
{
    public const string ModelIndexFile = "model_index.json";
    public const string ConfigFile = "config.json";

    private readonly List<IModelFile> _files;
    private readonly Dictionary<string, (IModelFile File, TensorInfo Inner)> _byName;

    private DiffusersFolder(string path, List<IModelFile> files, List<TensorInfo> tensors,
        Dictionary<string, (IModelFile, TensorInfo)> byName, Dictionary<string, string> metadata, List<string> components, long size)
    {
        Path = path;
        _files = files;
        Tensors = tensors;
        _byName = byName;
        Metadata = metadata;
        Components = components;
        SizeBytes = size;
    }

    public string Path { get; }
    public ModelFormat Format => ModelFormat.Diffusers;
    public IReadOnlyList<TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public long SizeBytes { get; }

    /// <summary>Components that hold weights, in model_index order (one entry for a component folder).</summary>
    public IReadOnlyList<string> Components { get; }

    /// <summary>True for a pipeline folder (model_index.json); false for a lone component folder.</summary>
    public bool IsPipeline => Metadata.Keys.Any(k => k.StartsWith("model_index.", StringComparison.Ordinal));

    /// <summary>A pipeline folder, or a component folder (config.json next to recognised weight files).</summary>
    public static bool IsDiffusersFolder(string path) =>
        File.Exists(System.IO.Path.Combine(path, ModelIndexFile))
        || (File.Exists(System.IO.Path.Combine(path, ConfigFile)) && DiffusersWeights.HasWeights(path));

    public static DiffusersFolder Open(string path)
    {
        if (!Directory.Exists(path)) throw new InvalidModelFileException(path, "no such folder");
        var builder = new Builder(path);
        try
        {
            if (File.Exists(System.IO.Path.Combine(path, ModelIndexFile))) builder.AddPipeline();
            else if (File.Exists(System.IO.Path.Combine(path, ConfigFile))) builder.AddLoneComponent();
            else throw new InvalidModelFileException(path, "not a diffusers folder: no model_index.json or config.json");
            return builder.Build();
        }
        catch
        {
            builder.DisposeFiles();
            throw;
        }
    }

    public void ReadTensorData(TensorInfo tensor, Span<byte> destination)
    {
        if (!_byName.TryGetValue(tensor.Name, out var source))
            throw new ArgumentException($"tensor '{tensor.Name}' is not part of {Path}", nameof(tensor));
        source.File.ReadTensorData(source.Inner, destination);
    }

    public void Dispose()
    {
        foreach (var file in _files) file.Dispose();
    }

    /// <summary>Collects components while opening; owns the opened files until the folder is built.</summary>
    private sealed class Builder(string root)
    {
        private readonly List<IModelFile> _files = new();
        private readonly List<TensorInfo> _tensors = new();
        private readonly Dictionary<string, (IModelFile, TensorInfo)> _byName = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);
        private readonly List<string> _components = new();
        private long _size;

        public void AddPipeline()
        {
            string indexPath = System.IO.Path.Combine(root, ModelIndexFile);
            var index = DiffusersConfig.ReadObject(indexPath);
            _size += new FileInfo(indexPath).Length;
            DiffusersConfig.AddScalars(index, "model_index.", _metadata);
            var missing = new List<string>();
            foreach (var entry in index.EnumerateObject())
            {
                if (entry.Name.StartsWith('_') || !IsComponentEntry(entry.Value, out string className)) continue;
                string folder = System.IO.Path.Combine(root, entry.Name);
                if (!Directory.Exists(folder))
                {
                    missing.Add(entry.Name);
                    continue;
                }
                AddConfigMetadata(folder, entry.Name);
                var weights = DiffusersWeights.Find(folder);
                if (weights != null) AddComponent(entry.Name, weights);
                else if (IsWeightBearingClass(className) && File.Exists(System.IO.Path.Combine(folder, ConfigFile)))
                    throw new InvalidModelFileException(folder, $"{className} component has config.json but no weight file (diffusion_pytorch_model.safetensors, model.safetensors, .bin or a shard index)");
            }
            if (missing.Count > 0) _metadata["diffusers.missing_components"] = string.Join(",", missing);
            if (_components.Count == 0)
                throw new InvalidModelFileException(root, "model_index.json lists no component folder with weights");
        }

        public void AddLoneComponent()
        {
            string configPath = System.IO.Path.Combine(root, ConfigFile);
            var config = DiffusersConfig.ReadObject(configPath);
            // transformers configs (text encoders) name their class in "architectures" instead of "_class_name".
            string? className = DiffusersConfig.GetString(config, "_class_name") ?? FirstArchitecture(config);
            string name = DiffusersComponentNames.FromClassName(className) ?? FolderComponentName(root);
            var weights = DiffusersWeights.Find(root)
                ?? throw new InvalidModelFileException(root, "config.json but no weight file (diffusion_pytorch_model.safetensors, model.safetensors, .bin or a shard index)");
            AddConfigMetadata(root, name);
            AddComponent(name, weights);
        }

        public DiffusersFolder Build()
        {
            _metadata["diffusers.components"] = string.Join(",", _components);
            return new DiffusersFolder(root, _files, _tensors, _byName, _metadata, _components, _size);
        }

        public void DisposeFiles()
        {
            foreach (var file in _files) file.Dispose();
        }

        private static bool IsComponentEntry(JsonElement value, out string className)
        {
            className = "";
            if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() != 2) return false;
            if (value[1].ValueKind != JsonValueKind.String) return false;
            className = value[1].GetString()!;
            return true;
        }

        /// <summary>Tokenizers, schedulers and image processors carry no weights.</summary>
        private static bool IsWeightBearingClass(string className) =>
            !(className.Contains("Tokenizer", StringComparison.Ordinal) || className.Contains("Scheduler", StringComparison.Ordinal)
              || className.Contains("Processor", StringComparison.Ordinal) || className.Contains("FeatureExtractor", StringComparison.Ordinal));

        private static string? FirstArchitecture(JsonElement config) =>
            config.TryGetProperty("architectures", out var a) && a.ValueKind == JsonValueKind.Array && a.GetArrayLength() > 0
                && a[0].ValueKind == JsonValueKind.String ? a[0].GetString() : null;

        private static string FolderComponentName(string folder)
        {
            string name = new DirectoryInfo(folder).Name.ToLowerInvariant();
            return name.Length > 0 ? name : "model";
        }

        private void AddConfigMetadata(string folder, string component)
        {
            foreach (var configName in new[] { ConfigFile, "scheduler_config.json" })
            {
                string configPath = System.IO.Path.Combine(folder, configName);
                if (!File.Exists(configPath)) continue;
                DiffusersConfig.AddScalars(DiffusersConfig.ReadObject(configPath), component + ".config.", _metadata);
                _size += new FileInfo(configPath).Length;
                return;
            }
        }

        private void AddComponent(string component, WeightFiles weights)
        {
            var opened = new List<(IModelFile File, string Relative)>();
            foreach (var file in weights.Files)
            {
                var model = ModelFileReader.Open(file);
                _files.Add(model);
                opened.Add((model, System.IO.Path.GetRelativePath(root, file).Replace('\\', '/')));
                _size += model.SizeBytes;
            }
            if (weights.IndexFile != null)
            {
                _size += new FileInfo(weights.IndexFile).Length;
                CheckWeightMap(weights.IndexFile, opened.Select(o => o.File).ToList());
            }
            foreach (var (model, relative) in opened)
            {
                foreach (var inner in model.Tensors)
                {
                    string name = component + "/" + inner.Name;
                    if (_byName.ContainsKey(name))
                        throw new InvalidModelFileException(model.Path, $"tensor '{inner.Name}' also appears in another weight file of {component}/");
                    var outer = inner with { Name = name, StorageKey = relative };
                    _tensors.Add(outer);
                    _byName[name] = (model, inner);
                }
                foreach (var (key, value) in model.Metadata) _metadata[component + ".metadata." + key] = value;
            }
            _metadata[component + ".weights"] = string.Join(",", opened.Select(o => o.Relative));
            if (weights.Files.Any(f => System.IO.Path.GetFileName(f).Contains(".fp16.", StringComparison.Ordinal))
                || (weights.IndexFile != null && System.IO.Path.GetFileName(weights.IndexFile).Contains("fp16", StringComparison.Ordinal)))
                _metadata[component + ".variant"] = "fp16";
            _components.Add(component);
        }

        /// <summary>Every tensor an index promises must be in the shard it names.</summary>
        private static void CheckWeightMap(string indexFile, List<IModelFile> shards)
        {
            var byFile = shards.ToDictionary(s => System.IO.Path.GetFileName(s.Path), s => s.Tensors.Select(t => t.Name).ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal);
            foreach (var (tensor, shard) in DiffusersWeights.ReadWeightMap(indexFile))
            {
                if (!byFile[shard].Contains(tensor))
                    throw new InvalidModelFileException(indexFile, $"weight_map puts '{tensor}' in {shard}, which does not hold it");
            }
        }
    }
}
