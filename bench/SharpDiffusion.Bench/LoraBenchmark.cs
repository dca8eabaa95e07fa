using System.Diagnostics;
using System.Globalization;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.LoraTools;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Bench;

/// <summary>
/// Applying and restoring a kohya LoRA on a full-size SD1.5 U-Net and CLIP text encoder (random weights): every module
/// kohya's LoRANetwork wraps (264: U-Net attention, feed-forward and proj_in/proj_out, text-encoder attention and MLP),
/// stored in fp16 as trainers save it. Times a whole <see cref="AppliedLoras"/> job (open, resolve, read, hash, patch)
/// and its restore, the patch alone, and a bare <c>addmm_</c> loop over the same weights as the floor.
/// Target: apply ≤ 1 s for rank 32 on 2 threads.
/// </summary>
public static class LoraBenchmark
{
    public static void Run(TextWriter output, int threads = 2, int rank = 32, int repeats = 3)
    {
        set_num_threads(threads);
        var dir = Directory.CreateTempSubdirectory("sharpdiffusion-lora-bench-");
        try
        {
            string loraPath = Path.Combine(dir.FullName, "bench_lora.safetensors");
            output.WriteLine($"SD1.5 U-Net + CLIP-L, random weights, rank-{rank} kohya LoRA, {threads} thread(s), {repeats} jobs each");
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
                Measure(output, dtype, loraPath, dir.FullName, rank, repeats);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static void Measure(TextWriter output, ScalarType unetDType, string loraPath, string tempDir, int rank, int repeats)
    {
        var arch = RandomModelArchitecture.Sd15;
        using var unet = new UNetModel(arch.UNet, LayerFactory.Cpu(unetDType));
        // The text encoder stays float32 at every precision, as StableDiffusionCheckpoint loads it.
        using var clip = new ClipTextModel(arch.TextVocab, arch.TextWidth, arch.TextLayers, arch.TextHeads, arch.TextMlpWidth, arch.TextPositions);
        foreach (var p in unet.parameters().Concat(clip.parameters())) p.requires_grad = false;
        var targets = ModelNetworkTargets.FromModules((unet, ModelFamilyDetection.UNetPrefix), (clip, ClipTextModel.Sd1Prefix));
        if (!File.Exists(loraPath)) WriteLora(loraPath, tempDir, targets.Weights, rank);

        var tag = A1111NetworkTag.Parse("<lora:bench:0.8:0.7>");
        var apply = new List<(double, double)>();
        var restore = new List<(double, double)>();
        int patched = 0, matched = 0;
        for (int i = 0; i < repeats; i++)
        {
            AppliedLoras? applied = null;
            apply.Add(Time(() => applied = AppliedLoras.Apply(targets, [(tag, loraPath)])));
            patched = applied!.PatchedTensorCount;
            matched = applied.Reports[0].MatchedModules;
            if (applied.Warnings.Count > 0) output.WriteLine("  warning: " + string.Join("; ", applied.Warnings));
            restore.Add(Time(applied.Dispose));
        }
        targets.Dispose();

        // The patch alone (modules already read, no pool: backups allocated afresh), a copy of every touched weight,
        // and a bare addmm_ loop: the floors the patcher is measured against.
        using var file = ModelFileReader.Open(loraPath);
        var modules = NetworkModuleWeights.LoadAll(file, targets.Resolver.Resolve(file.Tensors.Select(t => t.Name)));
        try
        {
            var patchOnly = new List<(double, double)>();
            var restoreOnly = new List<(double, double)>();
            var copies = new List<(double, double)>();
            var bare = new List<(double, double)>();
            for (int i = 0; i < repeats; i++)
            {
                using var patcher = new NetworkPatcher(targets.Weights);
                patchOnly.Add(Time(() => patcher.Apply(modules, 0.8, 0.7)));
                restoreOnly.Add(Time(patcher.Restore));
                var clones = new List<Tensor>();
                copies.Add(Time(() => clones.AddRange(modules.Select(m => targets.Weights[m.Target.WeightKey].clone()))));
                foreach (var c in clones) c.Dispose();
            }
            using (no_grad())
            {
                for (int i = 0; i < repeats; i++)
                    bare.Add(Time(() => { foreach (var m in modules) BareAddmm(targets.Weights[m.Target.WeightKey], m, 1e-3); }));
            }
            output.WriteLine($"U-Net {unetDType}: {matched} modules, {patched} tensors patched, " +
                             $"{modules.Sum(m => targets.Weights[m.Target.WeightKey].NumberOfElements * targets.Weights[m.Target.WeightKey].ElementSize) / 1e9:F2} GB of weights touched");
            output.WriteLine("  job (AppliedLoras: open, read, hash, patch): apply " + Describe(apply) + "; restore " + Describe(restore));
            output.WriteLine("  patch only (NetworkPatcher, fresh backups):  apply " + Describe(patchOnly) + "; restore " + Describe(restoreOnly));
            output.WriteLine("  floor: clone of touched weights " + Describe(copies) + "; bare addmm_ loop " + Describe(bare));
        }
        finally
        {
            foreach (var m in modules) m.Dispose();
        }
    }

    /// <summary>Wall and process CPU seconds of one run (CPU time shows contention on a shared machine).</summary>
    private static (double Wall, double Cpu) Time(Action action)
    {
        var process = Process.GetCurrentProcess();
        process.Refresh();
        var cpu = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        action();
        sw.Stop();
        process.Refresh();
        return (sw.Elapsed.TotalSeconds, (process.TotalProcessorTime - cpu).TotalSeconds);
    }

    private static string Describe(List<(double Wall, double Cpu)> runs) =>
        $"best {runs.Min(r => r.Wall):F3} s (" + string.Join(", ", runs.Select(r =>
            string.Format(CultureInfo.InvariantCulture, "{0:F3}/{1:F3}", r.Wall, r.Cpu))) + " s wall/cpu)";

    private static void BareAddmm(Tensor weight, NetworkModuleWeights module, double scale)
    {
        var up = module.Required(NetworkTensorRoles.Up).flatten(1);
        var down = module.Required(NetworkTensorRoles.Down).flatten(1);
        if (weight.dtype == ScalarType.Float32)
        {
            using var flat = weight.view(weight.shape[0], -1);
            flat.addmm_(up, down, beta: 1, alpha: (float)scale);
        }
        else
        {
            using var delta = up.mm(down);
            using var flat = weight.view(weight.shape[0], -1);
            flat.add_(delta, alpha: scale);
        }
        up.Dispose();
        down.Dispose();
    }

    /// <summary>A rank-<paramref name="rank"/> LoRA in fp16 for every kohya target of the model, alpha = rank / 2.</summary>
    private static void WriteLora(string path, string tempDir, IReadOnlyDictionary<string, Tensor> weights, int rank)
    {
        // The kohya module names come from the extraction targets, which read a checkpoint's header: write one without data.
        string layoutPath = Path.Combine(tempDir, "layout.safetensors");
        SafetensorsWriter.WriteSparse(layoutPath, weights.Select(kv => new TensorInfo(kv.Key, TensorDType.F32, kv.Value.shape)));
        IReadOnlyList<ExtractionTarget> kohya;
        using (var layout = ModelFileReader.Open(layoutPath)) kohya = ExtractionTargets.ForSd1Checkpoint(layout, includeConvLayers: false);
        File.Delete(layoutPath);

        var generator = new Generator(32);
        var tensors = new List<TensorToWrite>();
        foreach (var target in kohya)
        {
            var shape = weights[target.WeightKey].shape;
            long[] tail = shape.Length == 4 ? [1, 1] : [];
            long inputs = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            tensors.Add(Fp16(target.ModuleName + ".lora_down.weight", randn([rank, inputs, .. tail], generator: generator) * 0.05));
            tensors.Add(Fp16(target.ModuleName + ".lora_up.weight", randn([shape[0], rank, .. tail], generator: generator) * 0.01));
            tensors.Add(Fp16(target.ModuleName + ".alpha", tensor(rank / 2f)));
        }
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["ss_network_dim"] = rank.ToString(CultureInfo.InvariantCulture) });
        Console.WriteLine($"wrote {kohya.Count} modules, {new FileInfo(path).Length / 1e6:F1} MB");
    }

    private static TensorToWrite Fp16(string name, Tensor value)
    {
        using (value)
        using (var half = value.to(ScalarType.Float16).contiguous())
            return TensorToWrite.FromBytes(name, TensorDType.F16, half.shape, half.bytes.ToArray());
    }
}
