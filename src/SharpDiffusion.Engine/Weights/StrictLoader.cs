using SharpDiffusion.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Weights;

/// <summary>
/// Loads a module's parameters and buffers from a model file by exact name: module names mirror checkpoint keys,
/// so no mapping table is needed. Missing, unexpected or mis-shaped keys are an error that lists them.
/// </summary>
public static class StrictLoader
{
    /// <param name="module">The module; its state_dict names are matched against file keys after removing <paramref name="prefix"/>.</param>
    /// <param name="file">The model file.</param>
    /// <param name="prefix">Key prefix of this component in the file, e.g. "model.diffusion_model.".</param>
    /// <param name="ignore">Keys (after the prefix) that may be present in the file but have no module counterpart.</param>
    /// <param name="optional">Module keys the file may lack (they keep the module's own values).</param>
    public static void Load(nn.Module module, IModelFile file, string prefix, IReadOnlyCollection<string>? ignore = null,
        IReadOnlyCollection<string>? optional = null)
    {
        var fileTensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
        {
            if (t.Name.StartsWith(prefix, StringComparison.Ordinal)) fileTensors[t.Name[prefix.Length..]] = t;
        }

        var targets = module.state_dict();
        var missing = new List<string>();
        var misShaped = new List<string>();
        var work = new List<(TensorInfo Info, Tensor Target)>();
        foreach (var (name, target) in targets)
        {
            if (!fileTensors.TryGetValue(name, out var info))
            {
                if (optional != null && optional.Contains(name)) continue;
                missing.Add(prefix + name);
                continue;
            }
            if (!info.Shape.SequenceEqual(target.shape))
            {
                misShaped.Add($"{prefix}{name}: file {info.ShapeText}, model [{string.Join(", ", target.shape)}]");
                continue;
            }
            work.Add((info, target));
        }
        ReadAll(file, work);

        var unexpected = fileTensors.Keys
            .Where(k => !targets.ContainsKey(k) && (ignore == null || !ignore.Contains(k)))
            .Select(k => prefix + k)
            .ToList();
        if (missing.Count + misShaped.Count + unexpected.Count == 0) return;
        throw new ModelLoadException(Describe(file.Path, missing, unexpected, misShaped));
    }

    /// <summary>
    /// Reads every tensor into its parameter, on two threads when there is enough to share (most of the time is
    /// faulting in the parameters' fresh memory, which proceeds in parallel); each thread has its own staging buffer.
    /// </summary>
    private static void ReadAll(IModelFile file, List<(TensorInfo Info, Tensor Target)> work)
    {
        const long ParallelBytes = 64L << 20;
        long total = work.Sum(w => w.Info.ByteLength);
        int workers = total >= ParallelBytes ? Math.Min(2, Environment.ProcessorCount) : 1;
        // Largest first, each to the less loaded worker: the shares end up within one tensor of each other.
        var shares = Enumerable.Range(0, workers).Select(_ => new List<(TensorInfo Info, Tensor Target)>()).ToArray();
        var loads = new long[workers];
        foreach (var item in work.OrderByDescending(w => w.Info.ByteLength))
        {
            int least = Array.IndexOf(loads, loads.Min());
            shares[least].Add(item);
            loads[least] += item.Info.ByteLength;
        }
        void Run(List<(TensorInfo Info, Tensor Target)> share)
        {
            using var staging = new StagingBuffer();
            using var noGrad = no_grad(); // grad mode is per thread
            foreach (var (info, target) in share) ReadInto(file, info, target, staging);
        }
        if (workers == 1)
        {
            Run(shares[0]);
            return;
        }
        var other = Task.Run(() => Run(shares[1]));
        try
        {
            Run(shares[0]);
        }
        catch
        {
            try { other.GetAwaiter().GetResult(); } catch (Exception) { } // the first failure is the one reported
            throw;
        }
        other.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Same element type: the file bytes go straight into the parameter's storage (one copy). Otherwise (fp16 file,
    /// bf16 model) they are read into a reused staging buffer, then converted into the parameter by one torch copy:
    /// a fresh temporary per tensor would have to be faulted in page by page, which cost more than the reading.
    /// </summary>
    private static void ReadInto(IModelFile file, TensorInfo info, Tensor target, StagingBuffer staging)
    {
        if (info.DType is TensorDType.F8_E4M3 or TensorDType.F8_E5M2 || target.device_type != DeviceType.CPU || !target.is_contiguous())
        {
            using var loaded = TensorReading.Read(file, info);
            target.copy_(loaded);
            return;
        }
        if (info.ByteLength == 0) return;
        var stored = TensorReading.ToScalarType(info.DType);
        if (stored == target.dtype)
        {
            file.ReadTensorData(info, target.bytes);
            return;
        }
        using var slice = staging.Slice(stored, info.Shape);
        file.ReadTensorData(info, slice.bytes);
        if (stored is ScalarType.Float16 or ScalarType.BFloat16 && target.dtype is ScalarType.Float16 or ScalarType.BFloat16)
        {
            // libtorch converts fp16 <-> bf16 element by element (0.42 s for SD1.5's U-Net here); widening to float32
            // and narrowing again are both vectorised (0.15 s together) and round the same way (fp16 -> fp32 is exact).
            using var widened = staging.Slice(ScalarType.Float32, info.Shape);
            widened.copy_(slice);
            target.copy_(widened);
            return;
        }
        target.copy_(slice);
    }

    private static string Describe(string path, List<string> missing, List<string> unexpected, List<string> misShaped)
    {
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add($"{missing.Count} missing key(s): {List(missing)}");
        if (unexpected.Count > 0) parts.Add($"{unexpected.Count} unexpected key(s): {List(unexpected)}");
        if (misShaped.Count > 0) parts.Add($"{misShaped.Count} mis-shaped key(s): {List(misShaped)}");
        return $"{path}: weights do not match the model: " + string.Join("; ", parts);
    }

    private static string List(List<string> keys) =>
        string.Join(", ", keys.Take(8)) + (keys.Count > 8 ? $", ... ({keys.Count - 8} more)" : "");
}
