using SharpDiffusion.Formats;

namespace SharpDiffusion.Workshop;

/// <summary>
/// Where a standalone VAE's tensors go in a checkpoint: A1111's load_vae_dict drops <c>loss*</c> keys and the EMA
/// bookkeeping and prefixes the rest with <c>first_stage_model.</c>. We also accept files whose keys already carry
/// that prefix (a VAE cut out of a checkpoint), ignore every <c>model_ema.*</c> key, and read <c>.vae.pt</c> files
/// through the torch reader, which unwraps <c>state_dict</c>.
/// </summary>
public static class VaeKeys
{
    /// <summary>Checkpoint key (<c>first_stage_model.*</c>) -> the VAE file's tensor.</summary>
    public static Dictionary<string, TensorInfo> Map(IModelFile vae)
    {
        var map = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var tensor in vae.Tensors)
        {
            string name = tensor.Name;
            if (name.StartsWith("loss", StringComparison.Ordinal) || name.StartsWith(CheckpointKeys.EmaPrefix, StringComparison.Ordinal)) continue;
            string target = name.StartsWith(CheckpointKeys.VaePrefix, StringComparison.Ordinal) ? name : CheckpointKeys.VaePrefix + name;
            map[target] = tensor;
        }
        return map;
    }
}
