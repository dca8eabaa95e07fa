using SharpDiffusion.Conversion;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Networks;

/// <summary>
/// Applies network modules to a model's weights in place and restores them exactly afterwards: the first time a
/// weight is patched, either an <see cref="IOriginalWeightSource"/> confirms it can give the weight's current bits
/// back (then nothing is copied), or a copy of it (in its own dtype) is kept; <see cref="Restore"/> puts the
/// original back bit for bit.
/// Modules are applied in order, each on the weight as the previous ones left it (as ComfyUI does). Plain LoRA
/// modules are added straight into the weight (<see cref="NetworkWeightMath.AddInPlace"/>): no weight-sized
/// temporaries for float32 weights, one reused float32 buffer for others.
/// </summary>
public sealed class NetworkPatcher : IDisposable
{
    private readonly IReadOnlyDictionary<string, Tensor> _weights;
    private readonly Dictionary<string, Tensor> _originals = new(StringComparer.Ordinal);
    private readonly HashSet<string> _fromSource = new(StringComparer.Ordinal);
    private readonly IOriginalWeightSource? _source;
    private readonly WeightBackupPool _backups;
    private readonly bool _ownsBackups;
    private readonly Float32Scratch _scratch = new();

    /// <param name="modelWeights">The live model tensors by single-file key (e.g. a module's state_dict with its prefix added).</param>
    /// <param name="backups">Where the copies of changed weights live; a pool shared across jobs keeps their buffers
    /// allocated between jobs. Without one the patcher frees its copies on <see cref="Restore"/>.</param>
    /// <param name="source">Where originals can be read back instead of copied (the checkpoint file), or null.</param>
    public NetworkPatcher(IReadOnlyDictionary<string, Tensor> modelWeights, WeightBackupPool? backups = null, IOriginalWeightSource? source = null)
    {
        _weights = modelWeights;
        _source = source;
        _ownsBackups = backups is null;
        _backups = backups ?? new WeightBackupPool();
    }

    /// <summary>Number of model tensors currently changed (weights and biases).</summary>
    public int PatchedTensorCount => _originals.Count + _fromSource.Count;

    /// <summary>How many of the changed tensors will be restored from the <see cref="IOriginalWeightSource"/> (no copy kept).</summary>
    public int RestoredFromSourceCount => _fromSource.Count;

    /// <summary>Applies each module at its strength.</summary>
    public void Apply(IEnumerable<(NetworkModuleWeights Module, double Strength)> modules)
    {
        foreach (var (module, strength) in modules) Apply(module, strength);
    }

    /// <summary>Applies a whole network with A1111's split strengths: text-encoder modules at one, U-Net modules at the other.</summary>
    public void Apply(IEnumerable<NetworkModuleWeights> network, double textEncoderStrength, double unetStrength)
    {
        foreach (var module in network) Apply(module, module.Target.IsTextEncoder ? textEncoderStrength : unetStrength);
    }

    /// <summary>Applies one module at <paramref name="strength"/>.</summary>
    public void Apply(NetworkModuleWeights module, double strength)
    {
        var target = module.Target;
        using var noGrad = no_grad();
        Patch(module, target.WeightKey, target, w => NetworkWeightMath.AddInPlace(module, w, strength, _scratch));
        if (target.BiasKey is { } biasKey && (module["diff_b"] ?? module["b_norm"]) is not null)
        {
            Patch(module, biasKey, target, b =>
            {
                using var patched = NetworkWeightMath.PatchedBias(module, b, strength)!;
                b.copy_(patched);
            });
        }
    }

    /// <summary>Puts every changed tensor back to its original values (bitwise) and hands the copies back.</summary>
    public void Restore()
    {
        using var noGrad = no_grad();
        foreach (var (key, original) in _originals)
        {
            _weights[key].copy_(original);
            _backups.Return(key, original);
        }
        _originals.Clear();
        foreach (var key in _fromSource) _source!.Restore(key, _weights[key]);
        _fromSource.Clear();
        _scratch.Dispose();
        if (_ownsBackups) _backups.Dispose();
    }

    private void Patch(NetworkModuleWeights module, string key, NetworkTarget target, Action<Tensor> patchInPlace)
    {
        if (!_weights.TryGetValue(key, out var live))
            throw new InvalidOperationException($"network module {module.Name}: the model has no tensor {key}");
        if (!_originals.ContainsKey(key) && !_fromSource.Contains(key))
        {
            if (_source?.CanRestore(key, live) == true) _fromSource.Add(key);
            else _originals[key] = _backups.Save(key, live);
        }

        // kohya's q/k/v of an OpenCLIP encoder patch one row block of the stacked in_proj tensor.
        long rows = live.shape[0] / target.SliceCount;
        using var view = target.SliceCount == 1 ? live.alias() : live.narrow(0, target.SliceIndex * rows, rows);
        patchInPlace(view);
    }

    /// <summary>Restores, then releases the kept copies.</summary>
    public void Dispose() => Restore();
}
