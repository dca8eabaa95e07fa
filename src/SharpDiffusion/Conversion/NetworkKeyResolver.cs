using SharpDiffusion.Architectures;

namespace SharpDiffusion.Conversion;

/// <summary>
/// Matches network-file modules (LoRA, LyCORIS, PEFT...) to a model's own single-file weight keys, whatever naming
/// style the network uses: one reverse alias map from every style's module name to the model weight, built from the
/// model's keys (as ComfyUI's <c>model_lora_keys_unet</c>/<c>model_lora_keys_clip</c> do). Styles:
/// kohya <c>lora_unet_</c> + diffusers or LDM path with '_'; <c>lora_te_</c>/<c>lora_te1_</c>/<c>lora_te2_</c> + HF CLIP path
/// with '_' (for OpenCLIP encoders kohya still uses HF names: q/k/v are row blocks of <c>in_proj_weight</c>);
/// PEFT/diffusers <c>unet.</c>/<c>text_encoder.</c>/<c>text_encoder_2.</c> + dotted path, with or without the
/// attention-processor form (<c>attn1.processor.to_q</c>); ComfyUI <c>diffusion_model.</c> + LDM path.
/// </summary>
public sealed class NetworkKeyResolver
{
    private readonly Dictionary<string, NetworkTarget> _aliases = new(StringComparer.Ordinal);
    private readonly List<string> _collisions = [];

    /// <summary>Every family's text-encoder slots, one per single-file prefix.</summary>
    private static readonly TextEncoderSlot[] TextEncoderSlots =
        [.. ModelArchitectures.All.SelectMany(a => a.TextEncoders).DistinctBy(e => e.Prefix)];

    private NetworkKeyResolver() { }

    /// <summary>Number of module names (all styles) that resolve.</summary>
    public int AliasCount => _aliases.Count;

    /// <summary>Module names that two different model weights both claimed (first one kept); empty for the known architectures.</summary>
    public IReadOnlyList<string> Collisions => _collisions;

    /// <summary>Builds the alias map for a model given all its single-file keys (U-Net, text encoders; others are ignored).</summary>
    public static NetworkKeyResolver ForModel(IEnumerable<string> modelKeys)
    {
        var keys = modelKeys as IReadOnlyCollection<string> ?? modelKeys.ToList();
        var keySet = keys as ISet<string> ?? new HashSet<string>(keys, StringComparer.Ordinal);
        var resolver = new NetworkKeyResolver();
        var unetKeys = keys.Where(k => k.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal)).ToList();
        UnetLayout? layout = unetKeys.Count > 0 ? UnetLayout.FromLdmKeys(unetKeys) : null;

        foreach (var key in keys)
        {
            if (key.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal))
            {
                if (key.EndsWith(".weight", StringComparison.Ordinal)) resolver.AddUnet(key, layout!, keySet);
                continue;
            }
            // The text encoders' names in network files are the registry's: each family's slot says its prefix, layout
            // and the kohya / PEFT prefixes that address it.
            var slot = TextEncoderSlots.FirstOrDefault(s => key.StartsWith(s.Prefix, StringComparison.Ordinal));
            if (slot == null) continue;
            var part = slot.Component == "text_encoder" ? ModelPart.TextEncoder : ModelPart.TextEncoder2;
            if (slot.Layout == TextEncoderLayout.HuggingFaceClip && key.EndsWith(".weight", StringComparison.Ordinal))
                resolver.AddHfClip(key, key[slot.Prefix.Length..], slot.KohyaPrefixes, slot.DottedPrefixes, part, keySet);
            else if (slot.Layout == TextEncoderLayout.OpenClip)
                resolver.AddOpenClip(key, slot.Prefix, slot.KohyaPrefixes, slot.DottedPrefixes, part, keySet);
        }
        return resolver;
    }

    /// <summary>The model weight a network module name (any style, no tensor suffix) refers to.</summary>
    public bool TryResolve(string moduleName, out NetworkTarget target) => _aliases.TryGetValue(moduleName, out target!);

    /// <summary>
    /// Groups a network file's keys by module, matches each module to a model weight and tells its algorithm.
    /// Keys of modules that match no weight, keys with no known suffix and keys the algorithm does not use are returned as unused.
    /// </summary>
    public NetworkResolution Resolve(IEnumerable<string> networkKeys)
    {
        var groups = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        var order = new List<string>();
        var unused = new List<string>();
        foreach (var key in networkKeys)
        {
            if (!NetworkTensorRoles.TrySplit(key, out var module, out var role))
            {
                unused.Add(key);
                continue;
            }
            if (!groups.TryGetValue(module, out var roles))
            {
                groups[module] = roles = new Dictionary<string, string>(StringComparer.Ordinal);
                order.Add(module);
            }
            if (!roles.TryAdd(role, key)) unused.Add(key); // two spellings of one role: keep the first
        }

        var modules = new List<ResolvedNetworkModule>();
        foreach (var name in order)
        {
            var roles = groups[name];
            var kind = NetworkTensorRoles.Classify(roles.Keys);
            if (kind == null || !_aliases.TryGetValue(name, out var target))
            {
                unused.AddRange(roles.Values);
                continue;
            }
            var (algorithm, used) = kind.Value;
            // A bias change for a layer without bias has nothing to patch.
            if (target.BiasKey == null) used = [.. used.Where(r => r is not ("diff_b" or "b_norm"))];
            var tensors = used.ToDictionary(r => r, r => roles[r], StringComparer.Ordinal);
            unused.AddRange(roles.Where(r => !tensors.ContainsKey(r.Key)).Select(r => r.Value));
            if (tensors.Count > 0) modules.Add(new ResolvedNetworkModule(name, target, algorithm, tensors));
        }
        return new NetworkResolution(modules, unused);
    }

    private void AddUnet(string key, UnetLayout layout, ISet<string> keySet)
    {
        string ldm = key[LdmPrefixes.Unet.Length..^".weight".Length];
        var target = new NetworkTarget(key, BiasOf(key, keySet), ModelPart.Unet);
        Add("lora_unet_" + Underscored(ldm), target);
        Add("diffusion_model." + ldm, target);
        Add(LdmPrefixes.Unet + ldm, target);
        var diffusers = UnetKeyNames.ToDiffusers(ldm + ".weight", layout);
        if (diffusers == null) return;
        string d = diffusers[..^".weight".Length];
        Add("lora_unet_" + Underscored(d), target);
        Add("unet." + d, target);
        Add(d, target);
        if (d.Contains(".to_", StringComparison.Ordinal))
        {
            // diffusers attention-processor LoRA: attn1.processor.to_q, attn1.processor.to_out (for to_out.0)
            string processor = d.Replace(".to_", ".processor.to_", StringComparison.Ordinal);
            if (processor.EndsWith(".to_out.0", StringComparison.Ordinal)) processor = processor[..^2];
            Add("unet." + processor, target);
            Add(processor, target);
        }
    }

    private void AddHfClip(string key, string hfKey, IReadOnlyList<string> kohyaPrefixes, IReadOnlyList<string> dottedPrefixes, ModelPart part, ISet<string> keySet)
    {
        if (!hfKey.StartsWith("text_model.", StringComparison.Ordinal)) return;
        string module = hfKey[..^".weight".Length];
        var target = new NetworkTarget(key, BiasOf(key, keySet), part);
        foreach (var p in kohyaPrefixes) Add(p + Underscored(module), target);
        foreach (var p in dottedPrefixes) Add(p + module, target);
    }

    private void AddOpenClip(string key, string prefix, IReadOnlyList<string> kohyaPrefixes, IReadOnlyList<string> dottedPrefixes, ModelPart part, ISet<string> keySet)
    {
        string open = key[prefix.Length..];
        foreach (var c in OpenClipKeyNames.ToHf(open, withProjection: false))
        {
            if (!c.Key.EndsWith(".weight", StringComparison.Ordinal)) continue;
            // The stacked q/k/v weight's bias is in_proj_bias (same row block); other layers follow X.weight / X.bias.
            string? bias = key.EndsWith("in_proj_weight", StringComparison.Ordinal)
                ? Existing(key[..^"weight".Length] + "bias", keySet)
                : BiasOf(key, keySet);
            var target = new NetworkTarget(key, bias, part, c.SliceIndex, c.SliceCount);
            string module = c.Key[..^".weight".Length];
            foreach (var p in kohyaPrefixes) Add(p + Underscored(module), target);
            foreach (var p in dottedPrefixes) Add(p + module, target);
        }
    }

    private void Add(string alias, NetworkTarget target)
    {
        if (_aliases.TryGetValue(alias, out var existing))
        {
            if (existing != target) _collisions.Add(alias);
            return;
        }
        _aliases[alias] = target;
    }

    private static string? BiasOf(string weightKey, ISet<string> keySet) =>
        weightKey.EndsWith(".weight", StringComparison.Ordinal) ? Existing(weightKey[..^"weight".Length] + "bias", keySet) : null;

    private static string? Existing(string key, ISet<string> keySet) => keySet.Contains(key) ? key : null;

    private static string Underscored(string path) => path.Replace('.', '_');
}
