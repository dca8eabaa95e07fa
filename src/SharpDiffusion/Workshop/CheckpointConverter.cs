using System.Text.Json.Nodes;
using SharpDiffusion.Conversion;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;

namespace SharpDiffusion.Workshop;

/// <summary>
/// Rewrites any readable model as .safetensors, tensor by tensor: optionally at another precision (float tensors
/// only), without training leftovers (--prune) or with the EMA weights as the model (--ema-only). Tensor names and
/// order are kept; a float32 tensor stored as float32 is copied byte for byte. The output's <c>__metadata__</c> keeps
/// a safetensors input's metadata, sets <c>format</c> = <c>pt</c> when absent, and records the conversion under
/// <c>sharpdiffusion_convert</c> (JSON). The input is read through <see cref="CheckpointFiles"/>, so a diffusers folder
/// becomes a single-file checkpoint in the LDM layout and old text-encoder names come out in the current layout; a
/// folder tensor with no single-file name is an error that lists it (nothing is silently dropped).
/// </summary>
public static class CheckpointConverter
{
    public const string MetadataKey = "sharpdiffusion_convert";

    private sealed record Entry(string Name, TensorInfo Source, TensorDType OutType)
    {
        public long[] Shape => Source.Shape;
    }

    public static ConvertResult Convert(ConvertOptions options, IProgress<WorkshopProgress>? progress = null)
    {
        if (options.Precision is { } p && !Precision.CanEncode(p))
            throw new WorkshopException($"precision {p} cannot be written; use fp32, fp16 or bf16");
        OutputGuard.Check(options.Output, [options.Input]);

        using var file = CheckpointFiles.Open(options.Input);
        if (file.Unmapped.Count > 0)
            throw new WorkshopException($"{options.Input}: {file.Unmapped.Count} tensor(s) have no single-file name: {string.Join(", ", file.Unmapped.Take(5))}{(file.Unmapped.Count > 5 ? ", ..." : "")}");
        var quantized = file.Tensors.FirstOrDefault(t => t.DType == TensorDType.Quantized);
        if (quantized != null)
            throw new WorkshopException($"{options.Input}: tensor '{quantized.Name}' is block-quantized ({quantized.TypeName}); safetensors cannot store it");

        var plan = Plan(options, file, out int dropped, out int fromEma);
        if (plan.Count == 0) throw new WorkshopException($"{options.Input}: nothing left to write");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (file.Format == ModelFormat.Safetensors)
            foreach (var (key, value) in file.Metadata) metadata[key] = value;
        metadata.TryAdd("format", "pt");
        metadata[MetadataKey] = new JsonObject
        {
            ["source"] = Path.GetFileName(options.Input.TrimEnd(Path.DirectorySeparatorChar)),
            ["source_format"] = file.Format.WireName(),
            ["precision"] = options.Precision is { } q ? Precision.Name(q) : null,
            ["prune"] = options.Prune,
            ["ema_only"] = options.EmaOnly,
            ["dropped_tensors"] = dropped,
        }.ToJsonString();

        long total = plan.Sum(e => SafetensorsWriter.ComputeByteLength(e.OutType, e.Shape));
        ByteBuffer buffer = new(), converted = new();
        var tensors = plan.Select(e => new TensorToWrite(e.Name, e.OutType, e.Shape, stream =>
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
        progress?.Report(new WorkshopProgress(0, total));
        SafetensorsWriter.Write(options.Output, tensors, metadata,
            progress == null ? null : new SyncProgress(written => progress.Report(new WorkshopProgress(written, total))));

        return new ConvertResult
        {
            Output = options.Output,
            Tensors = plan.Count,
            Dropped = dropped,
            FromEma = fromEma,
            PrecisionChanged = plan.Count(e => e.OutType != e.Source.DType),
            OutputBytes = total,
            Metadata = metadata,
        };
    }

    private static List<Entry> Plan(ConvertOptions options, IModelFile file, out int dropped, out int fromEma)
    {
        dropped = fromEma = 0;
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
        foreach (var tensor in file.Tensors)
        {
            string name = tensor.Name;
            bool isEma = name.StartsWith(CheckpointKeys.EmaPrefix, StringComparison.Ordinal);
            if ((options.EmaOnly && isEma) || (options.Prune && CheckpointKeys.IsTrainingOnly(name)))
            {
                dropped++;
                continue;
            }
            var data = tensor;
            if (ema != null && CheckpointKeys.EmaKeyFor(name) is { } emaKey && ema.TryGetValue(emaKey, out var twin))
            {
                if (!twin.Shape.SequenceEqual(tensor.Shape))
                    throw new WorkshopException($"{options.Input}: EMA tensor '{emaKey}' has shape {twin.ShapeText}, '{name}' has {tensor.ShapeText}");
                data = twin;
                fromEma++;
            }
            plan.Add(new Entry(name, data, Precision.Apply(data.DType, options.Precision)));
        }
        if (ema != null && fromEma == 0)
            throw new WorkshopException($"{options.Input}: --ema-only: no model_ema.* tensor matches a model.* weight");
        return plan;
    }
}
