using SharpDiffusion.Formats;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Weights;

/// <summary>
/// <see cref="StrictLoader"/> for files whose keys are renamed first (other layouts of the same network: ESRGAN's old
/// names, diffusers' ControlNet names): every parameter needs exactly one tensor, none may be left over, shapes equal.
/// </summary>
public static class MappedStrictLoader
{
    /// <param name="module">The module to fill.</param>
    /// <param name="file">The file the tensors are read from.</param>
    /// <param name="tensors">Module parameter name -> the file's tensor (messages quote the file's own names).</param>
    /// <param name="what">What the module is, for messages ("RRDBNet x4: ...").</param>
    public static void Load(nn.Module module, IModelFile file, IReadOnlyDictionary<string, TensorInfo> tensors, string what)
    {
        var targets = module.state_dict();
        var missing = targets.Keys.Where(k => !tensors.ContainsKey(k)).ToList();
        var unexpected = tensors.Where(t => !targets.ContainsKey(t.Key)).Select(t => t.Value.Name).ToList();
        var misShaped = targets.Where(t => tensors.TryGetValue(t.Key, out var info) && !info.Shape.SequenceEqual(t.Value.shape))
            .Select(t => $"{tensors[t.Key].Name}: file {tensors[t.Key].ShapeText}, model [{string.Join(", ", t.Value.shape)}]").ToList();
        var problems = new List<string>();
        if (missing.Count > 0) problems.Add($"{missing.Count} missing: {List(missing)}");
        if (unexpected.Count > 0) problems.Add($"{unexpected.Count} unexpected: {List(unexpected)}");
        if (misShaped.Count > 0) problems.Add($"{misShaped.Count} mis-shaped: {List(misShaped)}");
        if (problems.Count > 0) throw new ModelLoadException($"weights do not fit {what}: {string.Join("; ", problems)}");

        using var noGrad = no_grad();
        foreach (var (name, target) in targets)
        {
            using var loaded = TensorReading.Read(file, tensors[name], target.dtype);
            target.copy_(loaded);
        }
    }

    private static string List(List<string> keys) => string.Join(", ", keys.Take(6)) + (keys.Count > 6 ? $", ... ({keys.Count - 6} more)" : "");
}
