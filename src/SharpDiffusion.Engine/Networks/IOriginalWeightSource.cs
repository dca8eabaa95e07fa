using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Networks;

/// <summary>
/// Somewhere a weight's original values can be had again without keeping a copy (the model file it was loaded from).
/// <see cref="NetworkPatcher"/> asks before changing a weight; when the answer is yes it keeps no copy and restores
/// from here.
/// </summary>
public interface IOriginalWeightSource
{
    /// <summary>True when <see cref="Restore"/> would write back exactly the bits <paramref name="live"/> holds now.</summary>
    bool CanRestore(string key, Tensor live);

    /// <summary>Writes the original values into <paramref name="live"/> (only after <see cref="CanRestore"/> said yes).</summary>
    void Restore(string key, Tensor live);
}
