using SharpDiffusion.Architectures;
using System.Text.Json.Nodes;
using SharpDiffusion.Conversion;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Workshop;

/// <summary>
/// A single-file SD1.x checkpoint (.safetensors, .ckpt) to a diffusers StableDiffusionPipeline folder, the inverse of
/// the diffusers-folder input of <see cref="CheckpointConverter"/>: every tensor is renamed through
/// <see cref="CheckpointKeyMap"/> (the VAE attention's 1x1 convs become Linear weights, same bytes), streamed into
/// <c>unet/diffusion_pytorch_model.safetensors</c>, <c>vae/diffusion_pytorch_model.safetensors</c> and
/// <c>text_encoder/model.safetensors</c> (the input read through <see cref="CheckpointFiles"/>, so old text-encoder names are
/// already the current ones), with configs derived from the weights (<see cref="DiffusersPipelineConfigs"/>),
/// <c>scheduler/scheduler_config.json</c> and model_index.json. The DDPM buffers, the text encoder's
/// <c>position_ids</c> (transformers keeps it as a non-persistent buffer) and EMA copies are left out. The whole folder
/// is written beside the target and renamed into place when complete.
/// </summary>
public static class DiffusersExporter
{
    private const string DiffusersWeights = "diffusion_pytorch_model.safetensors"; // unet/ and vae/
    private const string TextEncoderWeights = "model.safetensors";
    private const string SchedulerFolder = "scheduler";
    private const string ConfigFile = "config.json";

    internal sealed record Entry(string Component, string Key, TensorInfo Source, TensorDType OutType, long[] Shape);

    /// <summary>Everything the folder will hold, decided before anything is written.</summary>
    internal sealed record FolderPlan(List<Entry> Entries, Dictionary<string, JsonObject> Configs, JsonObject Scheduler, int Dropped, int FromEma);

    /// <summary>The tensors (diffusers names, shapes, types) and configs of the folder for <paramref name="file"/>; writes nothing.</summary>
    internal static FolderPlan Describe(ConvertOptions options, IModelFile file)
    {
        var names = file.Tensors.Select(t => t.Name).ToList();
        var map = CheckpointKeyMap.FromLdmKeys(names);
        var plan = Plan(options, file, names, map, out int dropped, out int fromEma);
        var byComponent = plan.GroupBy(e => e.Component).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var component in Components)
            if (!byComponent.ContainsKey(component))
                throw new WorkshopException($"{options.Input}: has no {PartName(component)}; a diffusers pipeline needs the U-Net, the VAE and the text encoder");

        var shapes = byComponent.ToDictionary(g => g.Key, g => (IReadOnlyDictionary<string, long[]>)g.Value.ToDictionary(e => e.Key, e => e.Shape));
        var textDtype = byComponent[DiffusersComponents.TextEncoder].First(e => e.OutType.IsFloatingPoint()).OutType;
        var configs = new Dictionary<string, JsonObject>
        {
            [DiffusersComponents.Unet] = DiffusersPipelineConfigs.Unet(shapes[DiffusersComponents.Unet], map.VaeLevels),
            [DiffusersComponents.Vae] = DiffusersPipelineConfigs.Vae(shapes[DiffusersComponents.Vae]),
            [DiffusersComponents.TextEncoder] = DiffusersPipelineConfigs.TextEncoder(shapes[DiffusersComponents.TextEncoder], TorchDtypeName(textDtype)),
        };
        int timesteps = file.Tensors.FirstOrDefault(t => t.Name == "betas") is { Rank: 1 } betas ? (int)betas.Shape[0] : 1000;
        return new FolderPlan(plan, configs, DiffusersPipelineConfigs.Scheduler(timesteps), dropped, fromEma);
    }

    private static readonly string[] Components = [DiffusersComponents.Unet, DiffusersComponents.Vae, DiffusersComponents.TextEncoder];

    public static DiffusersExportResult Export(ConvertOptions options, IProgress<WorkshopProgress>? progress = null)
    {
        if (options.Precision is { } p && !Precision.CanEncode(p))
            throw new WorkshopException($"precision {p} cannot be written; use fp32, fp16 or bf16");
        FolderOutput.Check(options.Output, [options.Input]);

        using var file = CheckpointFiles.Open(options.Input);
        if (file.Format == ModelFormat.Diffusers)
            throw new WorkshopException($"{options.Input}: is already a diffusers folder; convert it to a single file with --to safetensors");
        var quantized = file.Tensors.FirstOrDefault(t => t.DType == TensorDType.Quantized);
        if (quantized != null)
            throw new WorkshopException($"{options.Input}: tensor '{quantized.Name}' is block-quantized ({quantized.TypeName}); diffusers folders hold plain tensors");

        var folder = Describe(options, file);
        var (plan, configs, fromEma) = (folder.Entries, folder.Configs, folder.FromEma);
        int dropped = folder.Dropped + file.Dropped.Count; // the view's duplicates (old and new text-encoder names) count too
        var byComponent = plan.GroupBy(e => e.Component).ToDictionary(g => g.Key, g => g.ToList());
        string? tokenizer = TokenizerFiles.Find(options.Input);

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = "pt",
            [CheckpointConverter.MetadataKey] = new JsonObject
            {
                ["source"] = Path.GetFileName(options.Input),
                ["source_format"] = file.Format.WireName(),
                ["precision"] = options.Precision is { } q ? Precision.Name(q) : null,
                ["ema_only"] = options.EmaOnly,
                ["dropped_tensors"] = dropped,
            }.ToJsonString(),
        };

        long total = plan.Sum(e => SafetensorsWriter.ComputeByteLength(e.OutType, e.Shape));
        var folders = new List<string>();
        progress?.Report(new WorkshopProgress(0, total));
        FolderOutput.Write(options.Output, root =>
        {
            ByteBuffer buffer = new(), converted = new();
            long done = 0;
            foreach (var component in Components)
            {
                string dir = Directory.CreateDirectory(Path.Combine(root, component)).FullName;
                JsonFiles.Write(Path.Combine(dir, ConfigFile), configs[component]);
                var entries = byComponent[component];
                var tensors = entries.Select(e => new TensorToWrite(e.Key, e.OutType, e.Shape, stream =>
                {
                    var data = buffer.Get(e.Source.ByteLength);
                    file.ReadTensorData(e.Source, data.Span);
                    if (e.Source.DType == e.OutType)
                    {
                        stream.Write(data.Span);
                        return;
                    }
                    var result = converted.Get(SafetensorsWriter.ComputeByteLength(e.OutType, e.Shape));
                    TensorMath.Convert(data, e.Source.DType, e.OutType, result);
                    stream.Write(result.Span);
                }));
                long before = done;
                SafetensorsWriter.Write(Path.Combine(dir, component == DiffusersComponents.TextEncoder ? TextEncoderWeights : DiffusersWeights), tensors, metadata,
                    progress == null ? null : new SyncProgress(written => progress.Report(new WorkshopProgress(before + written, total))));
                done += entries.Sum(e => SafetensorsWriter.ComputeByteLength(e.OutType, e.Shape));
                folders.Add(component);
            }
            string scheduler = Directory.CreateDirectory(Path.Combine(root, SchedulerFolder)).FullName;
            JsonFiles.Write(Path.Combine(scheduler, "scheduler_config.json"), folder.Scheduler);
            folders.Add(SchedulerFolder);
            if (tokenizer != null)
            {
                TokenizerFiles.Write(tokenizer, root);
                folders.Add(TokenizerFiles.Folder);
            }
            JsonFiles.Write(Path.Combine(root, "model_index.json"), DiffusersPipelineConfigs.ModelIndex());
        });

        return new DiffusersExportResult
        {
            Output = options.Output,
            Folders = folders,
            TokenizerWritten = tokenizer != null,
            Tensors = plan.Count,
            Dropped = dropped,
            FromEma = fromEma,
            PrecisionChanged = plan.Count(e => e.OutType != e.Source.DType),
            OutputBytes = total,
        };
    }

    /// <summary>
    /// Diffusers name, source tensor and output type of every tensor that has a place in the folder. A U-Net, VAE or
    /// text-encoder tensor without a diffusers name means an architecture the map does not know: an error listing
    /// them, nothing silently lost. Other tensors (DDPM buffers, EMA, loss/optimizer state) are counted as dropped.
    /// </summary>
    private static List<Entry> Plan(ConvertOptions options, IModelFile file, List<string> names, CheckpointKeyMap map, out int dropped, out int fromEma)
    {
        dropped = fromEma = 0;
        if (map.Architecture != ModelArchitectures.Sd1)
            throw new WorkshopException($"{options.Input}: is an {map.Architecture.FamilyName} checkpoint; --to diffusers converts SD1.x checkpoints only so far");

        Dictionary<string, TensorInfo>? ema = null;
        if (options.EmaOnly)
        {
            ema = file.Tensors
                .Where(t => t.Name.StartsWith(CheckpointKeys.EmaPrefix, StringComparison.Ordinal) && !CheckpointKeys.IsEmaBookkeeping(t.Name))
                .GroupBy(t => t.Name, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
            if (ema.Count == 0) throw new WorkshopException($"{options.Input}: --ema-only: the file has no EMA weights (model_ema.*)");
        }

        var plan = new List<Entry>();
        var written = new HashSet<string>(StringComparer.Ordinal);
        var unmapped = new List<string>();
        for (int i = 0; i < file.Tensors.Count; i++)
        {
            var tensor = file.Tensors[i];
            string name = names[i];
            bool positionIds = name.EndsWith(".embeddings.position_ids", StringComparison.Ordinal);
            var parts = positionIds ? [] : map.ToDiffusers(name);
            if (parts.Count != 1)
            {
                if (parts.Count == 0 && !positionIds && IsModelPart(name)) unmapped.Add(tensor.Name);
                else dropped++;
                continue;
            }
            var c = parts[0];
            if (c.Transform is not (TensorTransform.None or TensorTransform.Conv1x1ToLinear))
                throw new WorkshopException($"{options.Input}: '{tensor.Name}' needs a {c.Transform} to become '{c.FolderTensorName}'; only SD1.x checkpoints convert to diffusers so far");
            if (!written.Add(c.FolderTensorName))
                throw new WorkshopException($"{options.Input}: two tensors map to '{c.FolderTensorName}'");
            var data = tensor;
            if (ema != null && CheckpointKeys.EmaKeyFor(name) is { } emaKey && ema.TryGetValue(emaKey, out var twin))
            {
                if (!twin.Shape.SequenceEqual(tensor.Shape))
                    throw new WorkshopException($"{options.Input}: EMA tensor '{emaKey}' has shape {twin.ShapeText}, '{tensor.Name}' has {tensor.ShapeText}");
                data = twin;
                fromEma++;
            }
            var shape = c.DiffusersShapeFromLdm(data.Shape)
                ?? throw new WorkshopException($"{options.Input}: '{tensor.Name}' {tensor.ShapeText} does not fit '{c.FolderTensorName}'");
            plan.Add(new Entry(c.Component, c.DiffusersKey, data, Precision.Apply(data.DType, options.Precision), shape));
        }
        if (unmapped.Count > 0)
            throw new WorkshopException($"{options.Input}: {unmapped.Count} tensor(s) have no diffusers name: {string.Join(", ", unmapped.Take(5))}{(unmapped.Count > 5 ? ", ..." : "")}");
        if (ema != null && fromEma == 0)
            throw new WorkshopException($"{options.Input}: --ema-only: no model_ema.* tensor matches a model.* weight");
        return plan;
    }

    private static bool IsModelPart(string name) =>
        name.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal) || name.StartsWith(LdmPrefixes.Vae, StringComparison.Ordinal)
        || name.StartsWith(ModelArchitectures.Sd1.TextEncoders[0].Prefix, StringComparison.Ordinal);

    private static string PartName(string component) => component switch
    {
        DiffusersComponents.Unet => "U-Net (model.diffusion_model.*)",
        DiffusersComponents.Vae => "VAE (first_stage_model.*)",
        _ => "text encoder (cond_stage_model.transformer.*)",
    };

    private static string TorchDtypeName(TensorDType dtype) => dtype switch
    {
        TensorDType.F16 => "float16",
        TensorDType.BF16 => "bfloat16",
        TensorDType.F64 => "float64",
        _ => "float32",
    };
}
