using SharpDiffusion.Architectures;
using System.Globalization;
using SharpDiffusion.Engine.Embeddings;
using SharpDiffusion.Engine.Hypernetworks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Text.Prompts;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>
/// Runs jobs on one loaded checkpoint with A1111's extra networks: prompt tags <c>&lt;lora:...&gt;</c>/<c>&lt;lyco:...&gt;</c>
/// patch the weights for the job only, <c>&lt;hypernet:name:strength&gt;</c> hooks every U-Net attention for the job
/// only, and the models folder's <c>embeddings/</c> are available to positive and negative prompts. Networks that
/// cannot be applied are skipped with a warning; the job goes on without them. The checkpoint is never reloaded.
/// </summary>
public sealed class ExtraNetworkSession : IDisposable
{
    private readonly StableDiffusionCheckpoint _model;
    private readonly Lazy<ModelNetworkTargets> _targets;
    private EmbeddingDatabase? _embeddings;
    private bool _embeddingWarningsReported;

    public ExtraNetworkSession(StableDiffusionCheckpoint model, ModelsFolder? folder)
    {
        _model = model;
        Folder = folder;
        _targets = new Lazy<ModelNetworkTargets>(() => ModelNetworkTargets.For(model));
    }

    public ModelsFolder? Folder { get; }

    /// <summary>The model's text-encoder widths in order (SD1 [768], SD2 [1024], SDXL [768, 1280]).</summary>
    public IReadOnlyList<int> EncoderWidths =>
        [.. _model.Architecture.TextEncoders.Select(e => e.Layout == TextEncoderLayout.HuggingFaceClip ? _model.ClipL!.Width : _model.OpenClip!.Width)];

    /// <summary>The embeddings of the models folder (loaded on first use), or null without a folder.</summary>
    public EmbeddingDatabase? Embeddings =>
        Folder == null ? null : _embeddings ??= EmbeddingDatabase.FromFolder(Folder.EmbeddingsFolder, EncoderWidths, ModelFileReader.Open);

    /// <summary>
    /// One job (see <see cref="ImageGenerator.Generate"/> for <paramref name="cancellation"/> and <paramref name="control"/>);
    /// LoRAs and hypernetworks are removed again when it ends, also when it throws. One job at a time: the weights are
    /// patched in place (<see cref="Generation.GenerationService"/> serialises its callers).
    /// </summary>
    public ExtraNetworkJobResult Generate(GenerationRequest request, Action<SamplerStep>? onStep = null, CancellationToken cancellation = default,
        Generation.GenerationControl? control = null, StableDiffusionCheckpoint? refiner = null)
    {
        var parsed = ExtraNetworkPrompt.Extract(request.Prompt);
        string? hiresPrompt = null;
        if (request.HiresPrompt != null)
        {
            var hires = ExtraNetworkPrompt.Extract(request.HiresPrompt);
            if (!hires.UsesSameNetworksAs(parsed))
                throw new ArgumentException($"the hires prompt's extra networks ({Listed(hires.NetworkTags)}) differ from the prompt's ({Listed(parsed.NetworkTags)}): a job uses one set for both passes");
            hiresPrompt = hires.Prompt;
        }
        var warnings = new List<string>(parsed.Warnings);
        var details = new List<string>();
        var fields = new List<KeyValuePair<string, string>>();

        var embeddings = Embeddings;
        if (embeddings != null && !_embeddingWarningsReported)
        {
            warnings.AddRange(embeddings.Warnings);
            _embeddingWarningsReported = true;
        }
        if (Folder == null && (parsed.Loras.Count > 0 || parsed.Hypernetworks.Count > 0))
            warnings.Add("the prompt names extra networks but no models folder was given (--models-dir); they are not applied");

        var loraFiles = parsed.Loras.Select(tag => (tag, Folder?.FindLora(tag.Name))).ToList();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // A job without LoRAs frees the weight copies an earlier job kept for reuse.
        if ((loraFiles.Count == 0 || Folder == null) && _targets.IsValueCreated) _targets.Value.Backups.ReleaseUnused();
        using var loras = loraFiles.Count == 0 || Folder == null ? AppliedLoras.None() : AppliedLoras.Apply(_targets.Value, loraFiles);
        warnings.AddRange(loras.Warnings);
        details.AddRange(loras.Reports.Select(r => r.Summary));
        if (loras.Reports.Count > 0)
            details.Add($"loras applied in {clock.Elapsed.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture)} ms ({loras.PatchedTensorCount} tensors patched, {loras.RestoredFromFileCount} of them restored from the checkpoint file afterwards)");

        var notApplied = loras.Reports.Where(r => !r.Applied)
            .Select(r => new NotAppliedNetwork(r.Tag.Kind, r.Tag.Name, r.NotAppliedReason ?? "not applied")).ToList();
        if (Folder == null)
        {
            notApplied.AddRange(parsed.Loras.Select(t => new NotAppliedNetwork(t.Kind, t.Name, "no models folder")));
            notApplied.AddRange(parsed.Hypernetworks.Select(t => new NotAppliedNetwork("hypernet", t.Name, "no models folder")));
        }
        var hypernetworks = Folder == null ? [] : LoadHypernetworks(parsed.Hypernetworks, warnings, notApplied);
        try
        {
            if (hypernetworks.Count > 0)
            {
                var attentionWidths = AttentionWidths(_model.UNet.Config).ToHashSet();
                warnings.AddRange(new HypernetworkStack(hypernetworks.Select(h => (h.Network, h.Tag.Strength)).ToList()).Check(attentionWidths));
                // One with no layer for any of the model's widths changes nothing: it is reported, not hooked.
                foreach (var h in hypernetworks.Where(h => !h.Network.Widths.Any(attentionWidths.Contains)).ToList())
                {
                    notApplied.Add(new NotAppliedNetwork("hypernet", h.Tag.Name, NoEffectReason(h.Network.Widths)));
                    h.Network.Dispose();
                    hypernetworks.Remove(h);
                }
            }
            if (hypernetworks.Count > 0)
            {
                var stack = new HypernetworkStack(hypernetworks.Select(h => (h.Network, h.Tag.Strength)).ToList());
                _model.UNet.ContextHook = new Float32ContextHook(stack);
            }

            Func<int, IPromptEmbeddingLookup?>? lookups = embeddings == null ? null : width => embeddings.ForEncoder(_model.Tokenizer, width);
            var result = ImageGenerator.Generate(_model, request with { Prompt = parsed.Prompt, HiresPrompt = hiresPrompt }, onStep, cancellation, lookups, control, refiner);

            if (loras.HashesInfotext is { } loraHashes) fields.Add(new("Lora hashes", loraHashes));
            if (embeddings != null)
            {
                var chunker = new PromptChunker(_model.Tokenizer, embeddings: embeddings.ForEncoder(_model.Tokenizer, EncoderWidths[0]));
                var used = EmbeddingDatabase.NamesUsed(chunker, [parsed.Prompt, request.NegativePrompt, hiresPrompt ?? "", request.HiresNegativePrompt ?? ""]);
                if (embeddings.HashesInfotext(used) is { } tiHashes) fields.Add(new("TI hashes", tiHashes));
                if (used.Count > 0) details.Add($"embeddings used: {string.Join(", ", used)}");
                notApplied.AddRange(SkippedEmbeddingsNamedIn([parsed.Prompt, request.NegativePrompt], embeddings));
            }
            if (hypernetworks.Count > 0)
            {
                fields.Add(new("Hypernet", string.Join(", ", hypernetworks.Select(h => h.Tag.Name))));
                if (hypernetworks.All(h => h.Network.ShortHash != null))
                    fields.Add(new("Hypernet hash", string.Join(", ", hypernetworks.Select(h => h.Network.ShortHash))));
                if (hypernetworks.Any(h => h.Tag.Strength != 1.0))
                    fields.Add(new("Hypernet strength", string.Join(", ", hypernetworks.Select(h => h.Tag.Strength.ToString(CultureInfo.InvariantCulture)))));
                details.AddRange(hypernetworks.Select(h => $"hypernet {h.Tag.Name}: widths {string.Join(", ", h.Network.Widths)}, strength {h.Tag.Strength.ToString(CultureInfo.InvariantCulture)}"));
            }
            if (NotAppliedNetwork.InfotextValue(notApplied) is { } notAppliedText) fields.Add(new(NotAppliedNetwork.InfotextKey, notAppliedText));
            return new ExtraNetworkJobResult(result, warnings, details, fields, loras.Reports) { NotApplied = notApplied };
        }
        finally
        {
            _model.UNet.ContextHook = null;
            foreach (var h in hypernetworks) h.Network.Dispose();
        }
    }

    private List<(HypernetworkTag Tag, Hypernetwork Network)> LoadHypernetworks(IEnumerable<HypernetworkTag> tags, List<string> warnings,
        List<NotAppliedNetwork> notApplied)
    {
        var loaded = new List<(HypernetworkTag, Hypernetwork)>();
        foreach (var tag in tags)
        {
            var path = Folder!.FindHypernetwork(tag.Name);
            if (path == null)
            {
                warnings.Add($"hypernet {tag.Name}: no such network in the models folder; not applied");
                notApplied.Add(new NotAppliedNetwork("hypernet", tag.Name, "no such file"));
                continue;
            }
            try
            {
                using var file = ModelFileReader.Open(path);
                loaded.Add((tag, Hypernetwork.Load(file)));
            }
            catch (Exception e) when (e is InvalidModelFileException or IOException or UnauthorizedAccessException)
            {
                warnings.Add($"hypernet {tag.Name} ({path}): {e.Message}; not applied");
                notApplied.Add(new NotAppliedNetwork("hypernet", tag.Name, "unreadable file"));
            }
        }
        return loaded;
    }

    /// <summary>
    /// Why a hypernetwork fits no attention layer: the families its widths serve (the registry's rule, the one
    /// <c>inspect</c> uses) when the model's is not among them, otherwise the widths themselves.
    /// </summary>
    private string NoEffectReason(IReadOnlyCollection<int> widths)
    {
        var families = ModelArchitectures.FamiliesOfHypernetworkWidths(widths);
        string model = _model.Family.DisplayName();
        return families.Count > 0 && !families.Contains(_model.Family)
            ? $"{string.Join("/", families.Select(f => f.DisplayName()))} hypernetwork on an {model} model"
            : $"its widths {string.Join(", ", widths.Order())} fit no layer of this {model} model";
    }

    /// <summary>
    /// The embeddings skipped for this model (wrong width) or whose files could not be read, whose names the prompts
    /// use: A1111 matches an embedding by its name's tokens, so such a name in a prompt is read as plain words instead.
    /// </summary>
    private IEnumerable<NotAppliedNetwork> SkippedEmbeddingsNamedIn(IEnumerable<string> prompts, EmbeddingDatabase embeddings)
    {
        if (embeddings.Skipped.Count == 0 && embeddings.Unreadable.Count == 0) yield break;
        var promptTokens = prompts.Where(p => p.Length > 0).Select(p => _model.Tokenizer.Encode(p)).ToList();
        bool Named(string name)
        {
            var nameTokens = _model.Tokenizer.Encode(name);
            return nameTokens.Count > 0 && promptTokens.Any(tokens => Contains(tokens, nameTokens));
        }
        var problems = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, reason) in embeddings.Unreadable)
            if (!embeddings.Skipped.ContainsKey(name) && Named(name)) problems[name] = reason;
        foreach (var (name, embedding) in embeddings.Skipped)
        {
            if (!Named(name)) continue;
            var problem = embedding.CompatibilityProblem(EncoderWidths) ?? "does not fit this model";
            if (problem.StartsWith(name + ": ", StringComparison.Ordinal)) problem = problem[(name.Length + 2)..];
            problems[name] = problem;
        }
        foreach (var (name, problem) in problems) yield return new NotAppliedNetwork("embedding", name, problem);
    }

    private static bool Contains(IReadOnlyList<int> tokens, IReadOnlyList<int> part)
    {
        for (int start = 0; start + part.Count <= tokens.Count; start++)
        {
            int i = 0;
            while (i < part.Count && tokens[start + i] == part[i]) i++;
            if (i == part.Count) return true;
        }
        return false;
    }

    /// <summary>The widths attention inputs have: the context width and every level's channels that has a transformer.</summary>
    private static IEnumerable<int> AttentionWidths(Models.UNetConfig config)
    {
        yield return config.ContextDim;
        for (int level = 0; level < config.Levels; level++)
            if (config.TransformerDepth[level] > 0) yield return config.ModelChannels * config.ChannelMult[level];
        if (config.TransformerDepthMiddle > 0) yield return config.ModelChannels * config.ChannelMult[^1];
    }

    public void Dispose()
    {
        _embeddings?.Dispose();
        if (_targets.IsValueCreated) _targets.Value.Dispose();
    }

    private static string Listed(IReadOnlyList<string> tags) => tags.Count == 0 ? "none" : string.Join(" ", tags);
}
