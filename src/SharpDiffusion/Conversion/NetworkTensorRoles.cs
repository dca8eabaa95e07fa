namespace SharpDiffusion.Conversion;

/// <summary>One tensor suffix of network files as written, the canonical role it plays, and the naming style it proves.</summary>
/// <param name="Suffix">The suffix with its separator ('.' or '_'), e.g. <c>.lora_A.weight</c>.</param>
/// <param name="Role">Canonical role (LyCORIS/kohya spelling, see <see cref="ResolvedNetworkModule.Tensors"/>).</param>
/// <param name="Style">
/// <see cref="NetworkTensorRoles.PeftStyle"/> or <see cref="NetworkTensorRoles.DiffusersStyle"/> when the suffix alone
/// says how the file is named; null when the module name has to tell (kohya and LyCORIS suffixes appear in both).
/// </param>
public sealed record NetworkTensorSuffix(string Suffix, string Role, string? Style);

/// <summary>
/// The one table of LoRA/LyCORIS tensor suffixes in every common naming style (kohya, LyCORIS, PEFT, diffusers), used
/// by inspection (<c>LoraKeyParser</c>) and by generation (<see cref="NetworkKeyResolver"/>), so that what
/// <c>inspect</c> reports is what <c>generate</c> applies. A key is split as module name + suffix by the longest
/// suffix that matches.
/// </summary>
public static class NetworkTensorRoles
{
    public const string Up = "lora_up.weight";
    public const string Down = "lora_down.weight";
    public const string Mid = "lora_mid.weight";
    public const string Alpha = "alpha";

    /// <summary>
    /// kohya/LyCORIS DoRA magnitude: [1, in, 1...] (norm over every dim but the input one, A1111's and ComfyUI's
    /// convention) or [out, 1, ...] (LyCORIS <c>wd_on_out</c>: norm over every dim but the output one); the shape tells.
    /// </summary>
    public const string DoraScale = "dora_scale";

    /// <summary>
    /// PEFT DoRA magnitude (<c>lora_magnitude_vector</c>): always one value per output channel ([out] for a linear
    /// layer, [1, out, 1, 1] for a convolution), the norm taken over every dim but the output one (PEFT
    /// <c>DoraLinearLayer.get_weight_norm</c>: <c>linalg.norm(W + s·BA, dim=1)</c>). Its own role because a square
    /// weight's [out] vector would otherwise look like kohya's input-axis scale.
    /// </summary>
    public const string DoraMagnitude = "lora_magnitude_vector";

    /// <summary>The style of PEFT keys (<c>lora_A</c>/<c>lora_B</c>/<c>lora_magnitude_vector</c>).</summary>
    public const string PeftStyle = "peft";

    /// <summary>The style of diffusers' own LoRA layers (<c>.lora.up.weight</c>, <c>lora_linear_layer</c>, attention processors).</summary>
    public const string DiffusersStyle = "diffusers";

    /// <summary>The IA3 scale vector's suffix: a plain <c>.weight</c>, a LoRA key only beside <c>.on_input</c>.</summary>
    public const string Ia3WeightSuffix = ".weight";

    /// <summary>Every known suffix, longest first (so <c>.lora_linear_layer.down.weight</c> wins over <c>.weight</c>).</summary>
    public static IReadOnlyList<NetworkTensorSuffix> Suffixes { get; } = BuildSuffixes();

    private static NetworkTensorSuffix[] BuildSuffixes()
    {
        NetworkTensorSuffix[] table =
        [
            // kohya / LyCORIS (style from the module name)
            new(".lora_up.weight", Up, null), new(".lora_down.weight", Down, null), new(".lora_mid.weight", Mid, null),
            // PEFT (diffusers >= 0.22, Flux/SD3 trainers); DoRA's magnitude with or without PEFT's module ".weight"
            new(".lora_B.weight", Up, PeftStyle), new(".lora_A.weight", Down, PeftStyle),
            new(".lora_B.default.weight", Up, PeftStyle), new(".lora_A.default.weight", Down, PeftStyle),
            new(".lora_magnitude_vector", DoraMagnitude, PeftStyle), new(".lora_magnitude_vector.weight", DoraMagnitude, PeftStyle),
            // diffusers LoRACompatibleLinear / transformers text encoder LoRA
            new(".lora.up.weight", Up, DiffusersStyle), new(".lora.down.weight", Down, DiffusersStyle),
            new(".lora_linear_layer.up.weight", Up, DiffusersStyle), new(".lora_linear_layer.down.weight", Down, DiffusersStyle),
            // diffusers attention-processor LoRA: "...attn1.processor.to_q_lora.up.weight"
            new("_lora.up.weight", Up, DiffusersStyle), new("_lora.down.weight", Down, DiffusersStyle),
            new(".alpha", Alpha, null), new(".dora_scale", DoraScale, null),
            new(".hada_w1_a", "hada_w1_a", null), new(".hada_w1_b", "hada_w1_b", null), new(".hada_w2_a", "hada_w2_a", null),
            new(".hada_w2_b", "hada_w2_b", null), new(".hada_t1", "hada_t1", null), new(".hada_t2", "hada_t2", null),
            new(".lokr_w1", "lokr_w1", null), new(".lokr_w1_a", "lokr_w1_a", null), new(".lokr_w1_b", "lokr_w1_b", null),
            new(".lokr_w2", "lokr_w2", null), new(".lokr_w2_a", "lokr_w2_a", null), new(".lokr_w2_b", "lokr_w2_b", null),
            new(".lokr_t2", "lokr_t2", null),
            new(".diff", "diff", null), new(".diff_b", "diff_b", null), new(".w_norm", "w_norm", null), new(".b_norm", "b_norm", null),
            new(".a1.weight", "a1.weight", null), new(".a2.weight", "a2.weight", null),
            new(".b1.weight", "b1.weight", null), new(".b2.weight", "b2.weight", null),
            // (IA)^3: the plain ".weight" only wins when no longer suffix matches.
            new(".on_input", "on_input", null), new(Ia3WeightSuffix, "weight", null),
        ];
        return [.. table.OrderByDescending(s => s.Suffix.Length)];
    }

    /// <summary>The suffix entry a network key ends with (the longest that leaves a module name); null when none does.</summary>
    public static NetworkTensorSuffix? Match(string key)
    {
        foreach (var entry in Suffixes)
        {
            if (key.Length > entry.Suffix.Length && key.EndsWith(entry.Suffix, StringComparison.Ordinal)) return entry;
        }
        return null;
    }

    /// <summary>Splits a network key into module name and canonical role; false when no known suffix matches.</summary>
    public static bool TrySplit(string key, out string module, out string role)
    {
        if (Match(key) is { } entry)
        {
            module = key[..^entry.Suffix.Length];
            role = entry.Role;
            return true;
        }
        module = role = "";
        return false;
    }

    /// <summary>
    /// The algorithm a module's roles describe, and the roles it uses; null when they make no known module
    /// (for example an <c>alpha</c> with no weights).
    /// </summary>
    public static (NetworkAlgorithm Algorithm, string[] Roles)? Classify(IReadOnlyCollection<string> roles)
    {
        bool Has(string r) => roles.Contains(r);
        string[] Present(params string[] candidates) => [.. candidates.Where(Has)];
        // One DoRA magnitude per module: kohya's dora_scale if a file somehow has both.
        string[] common = [.. Present(Alpha), .. Has(DoraScale) ? [DoraScale] : Present(DoraMagnitude)];

        if (Has(Up) && Has(Down)) return (NetworkAlgorithm.LoRA, [Up, Down, .. Present(Mid), .. common]);
        if (Has("hada_w1_a") && Has("hada_w1_b") && Has("hada_w2_a") && Has("hada_w2_b"))
        {
            bool tucker = Has("hada_t1") && Has("hada_t2");
            return (NetworkAlgorithm.LoHa, ["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", .. tucker ? new[] { "hada_t1", "hada_t2" } : [], .. common]);
        }
        bool w1 = Has("lokr_w1") || (Has("lokr_w1_a") && Has("lokr_w1_b"));
        bool w2 = Has("lokr_w2") || (Has("lokr_w2_a") && Has("lokr_w2_b"));
        if (w1 && w2)
        {
            string[] first = Has("lokr_w1") ? ["lokr_w1"] : ["lokr_w1_a", "lokr_w1_b"];
            string[] second = Has("lokr_w2") ? ["lokr_w2"] : ["lokr_w2_a", "lokr_w2_b", .. Present("lokr_t2")];
            return (NetworkAlgorithm.LoKr, [.. first, .. second, .. common]);
        }
        if (Has("a1.weight") && Has("a2.weight") && Has("b1.weight") && Has("b2.weight"))
            return (NetworkAlgorithm.GLoRA, ["a1.weight", "a2.weight", "b1.weight", "b2.weight", .. common]);
        if (Has("diff") || Has("diff_b")) return (NetworkAlgorithm.Full, Present("diff", "diff_b"));
        if (Has("w_norm")) return (NetworkAlgorithm.Norm, Present("w_norm", "b_norm"));
        if (Has("weight")) return (NetworkAlgorithm.IA3, Present("weight", "on_input"));
        return null;
    }
}
