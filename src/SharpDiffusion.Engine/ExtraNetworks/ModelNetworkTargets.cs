using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Encoders;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// A loaded checkpoint's live weights under their single-file keys (<c>model.diffusion_model.</c> + U-Net names, the
/// text encoders under their SD1/SD2/SDXL prefixes) and the alias map that resolves network files against them. Built
/// once per checkpoint: switching networks between jobs reuses it and never reloads the model.
/// </summary>
public sealed class ModelNetworkTargets
{
    private ModelNetworkTargets(Dictionary<string, Tensor> weights)
    {
        Weights = weights;
        Resolver = NetworkKeyResolver.ForModel(weights.Keys);
    }

    /// <summary>The model's parameters themselves (not copies): patching them changes the model.</summary>
    public IReadOnlyDictionary<string, Tensor> Weights { get; }

    public NetworkKeyResolver Resolver { get; }

    public static ModelNetworkTargets For(StableDiffusionCheckpoint model)
    {
        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Add(weights, model.UNet, ModelFamilyDetection.UNetPrefix);
        switch (model.Family)
        {
            case ModelFamily.Sd1:
                Add(weights, model.ClipL!, ClipTextModel.Sd1Prefix);
                break;
            case ModelFamily.Sd2:
                Add(weights, model.OpenClip!, OpenClipTextModel.Sd2Prefix);
                break;
            case ModelFamily.Sdxl:
                Add(weights, model.ClipL!, ClipTextModel.SdxlPrefix);
                Add(weights, model.OpenClip!, OpenClipTextModel.SdxlPrefix);
                break;
        }
        return new ModelNetworkTargets(weights);
    }

    private static void Add(Dictionary<string, Tensor> weights, nn.Module module, string prefix)
    {
        foreach (var (name, parameter) in module.named_parameters()) weights[prefix + name] = parameter;
    }
}
