using System.Globalization;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// A resumable training checkpoint: one <c>state.safetensors</c> holding the trainable weights (<c>network.*</c>),
/// every optimizer moment (<c>optimizer.*</c>), and in its metadata the step, the optimizers' step counts and the
/// settings that must not change on resume. Written to a temporary file and renamed, so a kill at any moment leaves
/// the previous checkpoint or the new one, never a mix. The random draws need no state: they are functions of (seed, step).
/// </summary>
public static class TrainingState
{
    public const string FileName = "state.safetensors";

    public static void Save(string folder, long step, LoraTrainingNetwork network, IReadOnlyList<TrainingOptimizer> optimizers, string fingerprint) =>
        Save(folder, step, network.NamedParameters(), optimizers, fingerprint);

    /// <summary>Saves any set of named trainable tensors (a LoRA's, an embedding's, a hypernetwork's) with their optimizers.</summary>
    public static void Save(string folder, long step, IEnumerable<(string Name, TorchSharp.Modules.Parameter Parameter)> parameters,
        IReadOnlyList<TrainingOptimizer> optimizers, string fingerprint)
    {
        Directory.CreateDirectory(folder);
        var tensors = parameters.Select(p => LoraTrainingNetwork.FloatTensor("network." + p.Name, p.Parameter, TensorDType.F32)).ToList();
        var metadata = new Dictionary<string, string>
        {
            ["step"] = step.ToString(CultureInfo.InvariantCulture),
            ["fingerprint"] = fingerprint,
        };
        for (int i = 0; i < optimizers.Count; i++)
        {
            metadata[$"optimizer{i}.steps"] = optimizers[i].StepCount.ToString(CultureInfo.InvariantCulture);
            tensors.AddRange(optimizers[i].State().Select(s => LoraTrainingNetwork.FloatTensor($"optimizer{i}.{s.Name}", s.Value, TensorDType.F32)));
        }
        SafetensorsWriter.Write(Path.Combine(folder, FileName), tensors, metadata);
    }

    /// <summary>Restores a checkpoint into <paramref name="network"/> and <paramref name="optimizers"/>; returns its step.</summary>
    /// <exception cref="InvalidModelFileException">No checkpoint, a damaged one, or one of other settings.</exception>
    public static long Load(string folder, LoraTrainingNetwork network, IReadOnlyList<TrainingOptimizer> optimizers, string fingerprint) =>
        Load(folder, network.NamedParameters(), optimizers, fingerprint);

    /// <summary>Restores a checkpoint into <paramref name="parameters"/> and <paramref name="optimizers"/>; returns its step.</summary>
    /// <exception cref="InvalidModelFileException">No checkpoint, a damaged one, or one of other settings.</exception>
    public static long Load(string folder, IEnumerable<(string Name, TorchSharp.Modules.Parameter Parameter)> parameters,
        IReadOnlyList<TrainingOptimizer> optimizers, string fingerprint)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new InvalidModelFileException(path, "no training checkpoint here (is --resume the .train folder of an earlier run?)");
        using var file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue("fingerprint", out var saved) || saved != fingerprint)
            throw new InvalidModelFileException(path, $"the checkpoint was written with other settings ({saved}); this run has {fingerprint}");
        var byName = file.Tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        using (no_grad())
        {
            foreach (var (name, parameter) in parameters)
            {
                if (!byName.TryGetValue("network." + name, out var info)) throw new InvalidModelFileException(path, $"no tensor network.{name}");
                using var value = TensorReading.Read(file, info, ScalarType.Float32);
                parameter.copy_(value);
            }
        }
        for (int i = 0; i < optimizers.Count; i++)
        {
            string prefix = $"optimizer{i}.";
            var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var info in file.Tensors.Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal)))
                state[info.Name[prefix.Length..]] = TensorReading.Read(file, info, ScalarType.Float32);
            long steps = long.Parse(file.Metadata[prefix + "steps"], CultureInfo.InvariantCulture);
            optimizers[i].LoadState(state, steps);
            foreach (var t in state.Values) t.Dispose();
        }
        return long.Parse(file.Metadata["step"], CultureInfo.InvariantCulture);
    }
}
