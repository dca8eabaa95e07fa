using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>
/// Decides what a model file is from its tensor names, shapes, dtypes and metadata (never the file name, and never
/// tensor data, except the tiny LoRA <c>.alpha</c> scalars). Detectors run from the most specific layout to the most
/// general: networks (LoRA, embedding, hypernetwork), add-ons (ControlNet, upscaler), then full models and parts.
/// </summary>
public static class ModelClassifier
{
    private delegate bool Detector(TensorIndex index, ModelClassification result);

    private static readonly Detector[] Detectors =
    {
        LoraDetector.TryDetect,
        EmbeddingDetector.TryDetect,
        HypernetworkDetector.TryDetect,
        ControlNetDetector.TryDetect,
        UpscalerDetector.TryDetect,
        VaeApproxDetector.TryDetect,
        CheckpointDetector.TryDetect,
    };

    public static ModelClassification Classify(IModelFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var index = new TensorIndex(file);
        var result = new ModelClassification
        {
            Tensors = index.Count,
            Parameters = index.Tensors.Sum(t => t.ElementCount),
            Precision = PrecisionDetector.Detect(index.Tensors),
            Title = index.Meta("modelspec.title") ?? index.Meta("ss_output_name"),
        };

        if (index.Count == 0)
        {
            result.Kind = ModelKind.Unknown;
            Evidence.Add(result, "the file holds no tensors");
            return result;
        }

        KohyaMetadata.ApplyTriggerWords(index, result);
        foreach (var detect in Detectors)
        {
            if (detect(index, result)) return result;
        }

        result.Kind = ModelKind.Unknown;
        Evidence.Add(result, $"{index.Count} tensors in no known layout; first keys: "
            + string.Join(", ", index.Tensors.Take(3).Select(t => t.Name + " " + Evidence.Shape(t))));
        return result;
    }
}
