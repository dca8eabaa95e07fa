using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>
/// Placeholder on this branch: counts tensors and parameters and leaves the kind Unknown. The classifier proper
/// (kind, base family, components, LoRA/embedding/hypernetwork details) replaces this file at merge.
/// </summary>
public static class ModelClassifier
{
    public static ModelClassification Classify(IModelFile file)
    {
        var result = new ModelClassification { Kind = ModelKind.Unknown, Tensors = file.Tensors.Count };
        foreach (var tensor in file.Tensors) result.Parameters += tensor.ElementCount;
        return result;
    }
}
