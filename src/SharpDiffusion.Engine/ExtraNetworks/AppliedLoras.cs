using SharpDiffusion.Architectures;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// LoRAs patched into a model's live weights for one job (A1111's <c>&lt;lora:name:te:unet&gt;</c>, several at once,
/// each at its text-encoder and U-Net strength); <see cref="Dispose"/> puts every weight back bit for bit. A network
/// whose file is missing, unreadable or for another model (nothing resolves) is skipped with a warning and the job
/// goes on without it, as A1111 does.
/// </summary>
public sealed class AppliedLoras : IDisposable
{
    // One patcher per network, restored in reverse order: a network that fails half-way is undone alone.
    private readonly List<NetworkPatcher> _patchers;
    private readonly WeightBackupPool? _backups;
    private bool _disposed;

    private AppliedLoras(List<NetworkPatcher> patchers, WeightBackupPool? backups, IReadOnlyList<LoraApplicationReport> reports, IReadOnlyList<string> warnings)
    {
        _patchers = patchers;
        _backups = backups;
        Reports = reports;
        Warnings = warnings;
    }

    public IReadOnlyList<LoraApplicationReport> Reports { get; }
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Number of tensor patches in place (a tensor two networks change counts twice).</summary>
    public int PatchedTensorCount => _patchers.Sum(p => p.PatchedTensorCount);

    /// <summary>How many of the patched tensors will be restored from the checkpoint file rather than from a copy.</summary>
    public int RestoredFromFileCount => _patchers.Sum(p => p.RestoredFromSourceCount);

    /// <summary>A1111's <c>Lora hashes</c> value ("name: hash, ..." for the applied ones), or null when none.</summary>
    public string? HashesInfotext
    {
        get
        {
            var parts = Reports.Where(r => r.Applied && r.ShortHash != null)
                .Select(r => $"{r.Tag.Name.Replace(":", "").Replace(",", "")}: {r.ShortHash}").ToList();
            return parts.Count == 0 ? null : string.Join(", ", parts);
        }
    }

    /// <summary>No LoRA: nothing is patched.</summary>
    public static AppliedLoras None() => new([], null, [], []);

    /// <param name="loras">Each tag with its file (null: no file has that name).</param>
    public static AppliedLoras Apply(ModelNetworkTargets model, IEnumerable<(A1111NetworkTag Tag, string? Path)> loras)
    {
        var patchers = new List<NetworkPatcher>();
        var reports = new List<LoraApplicationReport>();
        var warnings = new List<string>();
        try
        {
            foreach (var (tag, path) in loras)
            {
                var patcher = new NetworkPatcher(model.Weights, model.Backups, model.Originals);
                patchers.Add(patcher);
                reports.Add(ApplyOne(model, patcher, tag, path, warnings));
            }
        }
        catch
        {
            RestoreAll(patchers);
            model.Backups.ReleaseUnused();
            throw;
        }
        return new AppliedLoras(patchers, model.Backups, reports, warnings);
    }

    private static LoraApplicationReport ApplyOne(ModelNetworkTargets model, NetworkPatcher patcher, A1111NetworkTag tag, string? path, List<string> warnings)
    {
        if (path == null)
        {
            warnings.Add($"lora {tag.Name}: no such network in the models folder; not applied");
            return new LoraApplicationReport(tag, null, 0, [], false, null) { NotAppliedReason = "no such file" };
        }
        try
        {
            using var file = ModelFileReader.Open(path);
            var keys = file.Tensors.Select(t => t.Name).ToList();
            var resolution = model.Resolver.Resolve(keys);
            if (resolution.Modules.Count == 0)
            {
                warnings.Add($"lora {tag.Name} ({path}): none of its {keys.Count} keys match this model (a network for another model family?); not applied");
                return new LoraApplicationReport(tag, path, 0, resolution.Unused, false, null) { NotAppliedReason = NoMatchReason(file, model.Family) };
            }
            if (resolution.Unused.Count * 2 > keys.Count)
                warnings.Add($"lora {tag.Name}: {resolution.Unused.Count} of its {keys.Count} keys match nothing in this model (first: {resolution.Unused[0]})");

            try
            {
                // One module at a time: read, patch, free.
                foreach (var module in NetworkModuleWeights.ReadEach(file, resolution))
                {
                    using (module) patcher.Apply(module, module.Target.IsTextEncoder ? tag.TextEncoderStrength : tag.UnetStrength);
                }
            }
            catch (Exception e) when (e is InvalidOperationException or InvalidModelFileException)
            {
                // A module whose shape does not fit (a network for a model with the same names and other sizes), or a
                // tensor the file lists but cannot give: what was patched is undone.
                patcher.Restore();
                warnings.Add($"lora {tag.Name} ({path}): {e.Message}; not applied");
                string reason = e is InvalidModelFileException ? "unreadable file" : "its shapes do not fit this model";
                return new LoraApplicationReport(tag, path, 0, resolution.Unused, false, null) { NotAppliedReason = reason };
            }
            return new LoraApplicationReport(tag, path, resolution.Modules.Count, resolution.Unused, true, LoraShortHash.Compute(path, file.Metadata));
        }
        catch (Exception e) when (e is InvalidModelFileException or IOException or UnauthorizedAccessException)
        {
            warnings.Add($"lora {tag.Name} ({path}): {e.Message}; not applied");
            return new LoraApplicationReport(tag, path, 0, [], false, null) { NotAppliedReason = "unreadable file" };
        }
    }

    /// <summary>Why nothing of a readable network matched: its family when the classifier tells one that is not the model's.</summary>
    private static string NoMatchReason(IModelFile file, BaseFamily? modelFamily)
    {
        const string generic = "matches no layer of this model";
        if (modelFamily is not { } family) return generic;
        var classification = ModelClassifier.Classify(file);
        return classification.Base is { } fileFamily && ModelArchitectures.Fits(classification, family) == false
            ? $"{fileFamily.DisplayName()} LoRA on an {family.DisplayName()} model"
            : generic;
    }

    /// <summary>Restores every patched weight exactly; backup buffers this job did not use are freed, the others kept for the next job.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        RestoreAll(_patchers);
        _backups?.ReleaseUnused();
    }

    private static void RestoreAll(List<NetworkPatcher> patchers)
    {
        for (int i = patchers.Count - 1; i >= 0; i--) patchers[i].Restore();
        patchers.Clear();
    }
}
