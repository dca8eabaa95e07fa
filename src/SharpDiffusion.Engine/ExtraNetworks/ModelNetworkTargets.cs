using SharpDiffusion.Architectures;
using SharpDiffusion.Inspection;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Encoders;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// A loaded checkpoint's live weights under their single-file keys (<c>model.diffusion_model.</c> + U-Net names, the
/// text encoders under their SD1/SD2/SDXL prefixes) and the alias map that resolves network files against them. Built
/// once per checkpoint: switching networks between jobs reuses it and never reloads the model. It also owns the
/// buffers that hold copies of patched weights between jobs (<see cref="Backups"/>), freed by <see cref="Dispose"/>.
/// </summary>
public sealed class ModelNetworkTargets : IDisposable
{
    private ModelNetworkTargets(Dictionary<string, Tensor> weights, ModelFileOriginals? originals, BaseFamily? family)
    {
        Weights = weights;
        Family = family;
        Originals = originals;
        Resolver = NetworkKeyResolver.ForModel(weights.Keys);
    }

    /// <summary>The model's parameters themselves (not copies): patching them changes the model.</summary>
    public IReadOnlyDictionary<string, Tensor> Weights { get; }

    public NetworkKeyResolver Resolver { get; }

    /// <summary>The checkpoint's family (names a wrong-family network in reasons); null for bare modules.</summary>
    public BaseFamily? Family { get; }

    /// <summary>The copies of weights LoRAs change, kept allocated from one job to the next (see <see cref="WeightBackupPool"/>).</summary>
    public WeightBackupPool Backups { get; } = new();

    /// <summary>The checkpoint file, as the place unchanged weights are restored from without a copy; null for bare modules.</summary>
    public ModelFileOriginals? Originals { get; }

    public static ModelNetworkTargets For(StableDiffusionCheckpoint model)
    {
        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        Add(weights, model.UNet, model.Architecture.DenoiserPrefix);
        foreach (var slot in model.Architecture.TextEncoders)
            Add(weights, model.TextEncoder(slot), slot.Prefix);
        return new ModelNetworkTargets(weights, new ModelFileOriginals(model.File), model.Family);
    }

    /// <summary>Targets over bare modules, each under its single-file prefix (e.g. a U-Net under <c>model.diffusion_model.</c>).</summary>
    public static ModelNetworkTargets FromModules(params (nn.Module Module, string Prefix)[] modules)
    {
        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (module, prefix) in modules) Add(weights, module, prefix);
        return new ModelNetworkTargets(weights, null, null);
    }

    /// <summary>Frees the backup and file-reading buffers (the model's weights are not touched).</summary>
    public void Dispose()
    {
        Backups.Dispose();
        Originals?.Dispose();
    }

    private static void Add(Dictionary<string, Tensor> weights, nn.Module module, string prefix)
    {
        foreach (var (name, parameter) in module.named_parameters()) weights[prefix + name] = parameter;
    }
}
