using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Networks;

/// <summary>
/// The tensors of one network module in float32 on the CPU, by canonical role (see <see cref="NetworkTensorRoles"/>),
/// with the model weight they change.
/// </summary>
public sealed class NetworkModuleWeights : IDisposable
{
    public NetworkModuleWeights(string name, NetworkTarget target, NetworkAlgorithm algorithm, IReadOnlyDictionary<string, Tensor> tensors)
    {
        Name = name;
        Target = target;
        Algorithm = algorithm;
        Tensors = tensors;
    }

    public string Name { get; }
    public NetworkTarget Target { get; }
    public NetworkAlgorithm Algorithm { get; }
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>The module's <c>alpha</c>, or null when the file has none (then alpha = rank: scale 1).</summary>
    public double? Alpha => Tensors.TryGetValue(NetworkTensorRoles.Alpha, out var a) ? a.to(ScalarType.Float64).item<double>() : null;

    public Tensor? this[string role] => Tensors.TryGetValue(role, out var t) ? t : null;

    public Tensor Required(string role) =>
        Tensors.TryGetValue(role, out var t) ? t : throw new InvalidOperationException($"network module {Name}: no '{role}' tensor");

    /// <summary>Reads a resolved module's tensors from its network file as float32.</summary>
    public static NetworkModuleWeights Load(IModelFile file, ResolvedNetworkModule module)
    {
        var byName = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var info in file.Tensors) byName[info.Name] = info;
        return Load(file, module, byName);
    }

    /// <summary>Reads every resolved module of a network file (one pass over the file's tensor list).</summary>
    public static IReadOnlyList<NetworkModuleWeights> LoadAll(IModelFile file, NetworkResolution resolution)
    {
        var byName = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var info in file.Tensors) byName[info.Name] = info;
        var loaded = new List<NetworkModuleWeights>(resolution.Modules.Count);
        try
        {
            foreach (var module in resolution.Modules) loaded.Add(Load(file, module, byName));
        }
        catch
        {
            foreach (var m in loaded) m.Dispose();
            throw;
        }
        return loaded;
    }

    /// <summary>
    /// Reads the resolved modules one at a time, in order (the caller disposes each before taking the next): only one
    /// module's tensors are alive at once, and their memory is reused from one module to the next.
    /// </summary>
    public static IEnumerable<NetworkModuleWeights> ReadEach(IModelFile file, NetworkResolution resolution)
    {
        var byName = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var info in file.Tensors) byName[info.Name] = info;
        foreach (var module in resolution.Modules) yield return Load(file, module, byName);
    }

    private static NetworkModuleWeights Load(IModelFile file, ResolvedNetworkModule module, Dictionary<string, TensorInfo> byName)
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (role, key) in module.Tensors)
        {
            if (!byName.TryGetValue(key, out var info))
            {
                foreach (var t in tensors.Values) t.Dispose();
                throw new InvalidModelFileException(file.Path, $"network tensor '{key}' is listed but not present");
            }
            tensors[role] = TensorReading.Read(file, info, ScalarType.Float32);
        }
        return new NetworkModuleWeights(module.Name, module.Target, module.Algorithm, tensors);
    }

    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}
