using System.Diagnostics;
using System.Globalization;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.LoraTools;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Engine.Diagnostics;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Bench;

/// <summary>
/// Applying and restoring a kohya LoRA on a full-size SD1.5 checkpoint (random weights, written as fp16 and loaded
/// as generate loads it, in fp32 and in bf16): every module kohya's LoRANetwork wraps (264: U-Net attention,
/// feed-forward and proj_in/proj_out, text-encoder attention and MLP), stored in fp16 as trainers save it. Times
/// whole <see cref="AppliedLoras"/> jobs (open, resolve, read, hash, patch; the first is what one generate run pays)
/// and their restores, checks that every weight is back bit for bit, and shows the floors: a bare <c>addmm_</c> loop
/// over the same weights and a copy of every touched weight into fresh memory (what a kept copy costs).
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
            var arch = RandomModelArchitecture.Sd15;
            string checkpoint = Path.Combine(dir.FullName, "random_sd15.safetensors");
            string config = Path.Combine(dir.FullName, "random_sd15.config.json");
            string lora = Path.Combine(dir.FullName, "bench_lora.safetensors");
            var clock = Stopwatch.StartNew();
            RandomModel.Write(checkpoint, arch, TensorDType.F16);
            File.WriteAllText(config, RandomModelConfig.Json(arch));
            output.WriteLine($"SD1.5 random checkpoint (fp16, {new FileInfo(checkpoint).Length / 1e9:F2} GB) written in {clock.Elapsed.TotalSeconds:F0} s; " +
                             $"rank-{rank} kohya LoRA, {threads} thread(s), {repeats} jobs per precision");
            foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
            {
                using var model = StableDiffusionCheckpoint.Load(checkpoint, new CheckpointLoadOptions { ConfigPath = config, DType = dtype });
                if (!File.Exists(lora)) WriteLora(output, lora, model.File, rank);
                Measure(output, model, dtype, lora, repeats);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static void Measure(TextWriter output, StableDiffusionCheckpoint model, ScalarType dtype, string loraPath, int repeats)
    {
        using var targets = ModelNetworkTargets.For(model);
        using var file = ModelFileReader.Open(loraPath);
        var resolution = targets.Resolver.Resolve(file.Tensors.Select(t => t.Name));
        var keys = resolution.Modules.Select(m => m.Target.WeightKey).Distinct().ToList();
        // The first comparison with the checkpoint right after loading (what the first job of a generate run meets).
        var coldCheck = Time(() => keys.All(k => targets.Originals!.CanRestore(k, targets.Weights[k])));

        var tag = A1111NetworkTag.Parse("<lora:bench:0.8:0.7>");
        var apply = new List<(double, double)>();
        var restore = new List<(double, double)>();
        int patched = 0, matched = 0, fromFile = 0;
        for (int i = 0; i < repeats; i++)
        {
            AppliedLoras? applied = null;
            apply.Add(Time(() => applied = AppliedLoras.Apply(targets, [(tag, loraPath)])));
            (patched, matched, fromFile) = (applied!.PatchedTensorCount, applied.Reports[0].MatchedModules, applied.RestoredFromFileCount);
            if (applied.Warnings.Count > 0) output.WriteLine("  warning: " + string.Join("; ", applied.Warnings));
            restore.Add(Time(applied.Dispose));
        }

        // Where a job's time goes: hashing the file, reading the modules, checking the weights against the checkpoint, patching.
        var hash = Time(() => LoraShortHash.Compute(loraPath, null));
        var read = Time(() => { foreach (var m in NetworkModuleWeights.ReadEach(file, resolution)) m.Dispose(); }); // as a job reads them
        var modules = NetworkModuleWeights.LoadAll(file, resolution);
        try
        {
            bool exact = false;
            var check = Time(() => exact = keys.All(k => targets.Originals!.CanRestore(k, targets.Weights[k])));
            var reread = Time(() => { foreach (var k in keys) targets.Originals!.Restore(k, targets.Weights[k]); });
            var patch = Time(() =>
            {
                using var patcher = new NetworkPatcher(targets.Weights, source: AlwaysRestorable.Instance);
                patcher.Apply(modules, 0.8, 0.7);
                patcher.Restore();
            });
            long touchedBytes = keys.Sum(k => targets.Weights[k].NumberOfElements * targets.Weights[k].ElementSize);

            var copies = new List<(double, double)>();
            var bare = new List<(double, double)>();
            for (int i = 0; i < repeats; i++)
            {
                var clones = new List<Tensor>();
                copies.Add(Time(() => clones.AddRange(keys.Select(k => targets.Weights[k].clone()))));
                foreach (var c in clones) c.Dispose();
            }
            using (no_grad())
            {
                for (int i = 0; i < repeats; i++)
                    bare.Add(Time(() => { foreach (var m in modules) BareAddmm(targets.Weights[m.Target.WeightKey], m, 1e-3); }));
            }
            output.WriteLine($"U-Net {dtype} (text encoder float32): {matched} modules, {patched} tensors patched ({fromFile} restored from the checkpoint file), " +
                             $"{touchedBytes / 1e9:F2} GB of weights touched; restored bit for bit: {(exact ? "yes" : "NO")}");
            output.WriteLine("  job:   apply " + Describe(apply) + "; restore " + Describe(restore));
            output.WriteLine($"  parts: hash {hash.Wall:F3} s, read modules {read.Wall:F3} s, compare with checkpoint {check.Wall:F3} s (right after loading {coldCheck.Wall:F3} s), patch arithmetic {patch.Wall:F3} s, restore from checkpoint {reread.Wall:F3} s (cpu {hash.Cpu:F3}, {read.Cpu:F3}, {check.Cpu:F3}, {patch.Cpu:F3}, {reread.Cpu:F3} s)");
            output.WriteLine("  floor: copy of the touched weights into fresh memory " + Describe(copies) + "; bare addmm_ loop " + Describe(bare));
        }
        finally
        {
            foreach (var m in modules) m.Dispose();
        }
    }

    /// <summary>Times the patch arithmetic alone: no copies kept, and the "restore" applies nothing back (the bench's weights are random).</summary>
    private sealed class AlwaysRestorable : IOriginalWeightSource
    {
        public static readonly AlwaysRestorable Instance = new();
        public bool CanRestore(string key, Tensor live) => true;
        public void Restore(string key, Tensor live) { }
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
        $"first {runs[0].Wall:F3} s, best {runs.Min(r => r.Wall):F3} s (" + string.Join(", ", runs.Select(r =>
            string.Format(CultureInfo.InvariantCulture, "{0:F3}/{1:F3}", r.Wall, r.Cpu))) + " s wall/cpu)";

    private static void BareAddmm(Tensor weight, NetworkModuleWeights module, double scale)
    {
        using var up = module.Required(NetworkTensorRoles.Up).flatten(1);
        using var down = module.Required(NetworkTensorRoles.Down).flatten(1);
        using var flat = weight.view(weight.shape[0], -1);
        if (weight.dtype == ScalarType.Float32)
        {
            flat.addmm_(up, down, beta: 1, alpha: (float)scale);
            return;
        }
        using var delta = Scratch.Matrix(up.shape[0], down.shape[1]);
        delta.addmm_(up, down, beta: 0, alpha: (float)scale);
        flat.add_(delta);
    }

    private static readonly Float32Scratch Scratch = new();

    /// <summary>A rank-<paramref name="rank"/> LoRA in fp16 for every kohya target of the checkpoint, alpha = rank / 2.</summary>
    private static void WriteLora(TextWriter output, string path, IModelFile checkpoint, int rank)
    {
        var kohya = ExtractionTargets.ForSd1Checkpoint(checkpoint, includeConvLayers: false);
        var shapes = checkpoint.Tensors.ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
        var generator = new Generator(32);
        var tensors = new List<TensorToWrite>();
        foreach (var target in kohya)
        {
            var shape = shapes[target.WeightKey];
            long[] tail = shape.Length == 4 ? [1, 1] : [];
            long inputs = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            tensors.Add(Fp16(target.ModuleName + ".lora_down.weight", randn([rank, inputs, .. tail], generator: generator) * 0.05));
            tensors.Add(Fp16(target.ModuleName + ".lora_up.weight", randn([shape[0], rank, .. tail], generator: generator) * 0.01));
            tensors.Add(Fp16(target.ModuleName + ".alpha", tensor(rank / 2f)));
        }
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["ss_network_dim"] = rank.ToString(CultureInfo.InvariantCulture) });
        output.WriteLine($"LoRA: {kohya.Count} modules, {new FileInfo(path).Length / 1e6:F1} MB");
    }

    private static TensorToWrite Fp16(string name, Tensor value)
    {
        using (value)
        using (var half = value.to(ScalarType.Float16).contiguous())
            return TensorToWrite.FromBytes(name, TensorDType.F16, half.shape, half.bytes.ToArray());
    }
}
