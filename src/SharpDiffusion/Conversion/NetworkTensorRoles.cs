namespace SharpDiffusion.Conversion;

/// <summary>
/// Tensor suffixes of network files in every common naming style, and the canonical role each one plays.
/// A key is split as module name + suffix by the longest suffix that matches.
/// </summary>
public static class NetworkTensorRoles
{
    public const string Up = "lora_up.weight";
    public const string Down = "lora_down.weight";
    public const string Mid = "lora_mid.weight";
    public const string Alpha = "alpha";
    public const string DoraScale = "dora_scale";

    /// <summary>(suffix as written in files, canonical role). Suffixes start with their separator ('.' or '_').</summary>
    private static readonly (string Suffix, string Role)[] Suffixes =
    [
        // kohya / LyCORIS
        (".lora_up.weight", Up), (".lora_down.weight", Down), (".lora_mid.weight", Mid),
        // PEFT (diffusers >= 0.22, Flux/SD3 trainers)
        (".lora_B.weight", Up), (".lora_A.weight", Down), (".lora_B.default.weight", Up), (".lora_A.default.weight", Down),
        // diffusers LoRACompatibleLinear / transformers text encoder LoRA
        (".lora.up.weight", Up), (".lora.down.weight", Down),
        (".lora_linear_layer.up.weight", Up), (".lora_linear_layer.down.weight", Down),
        // diffusers attention-processor LoRA: "...attn1.processor.to_q_lora.up.weight"
        ("_lora.up.weight", Up), ("_lora.down.weight", Down),
        (".alpha", Alpha), (".dora_scale", DoraScale),
        (".hada_w1_a", "hada_w1_a"), (".hada_w1_b", "hada_w1_b"), (".hada_w2_a", "hada_w2_a"), (".hada_w2_b", "hada_w2_b"),
        (".hada_t1", "hada_t1"), (".hada_t2", "hada_t2"),
        (".lokr_w1", "lokr_w1"), (".lokr_w1_a", "lokr_w1_a"), (".lokr_w1_b", "lokr_w1_b"),
        (".lokr_w2", "lokr_w2"), (".lokr_w2_a", "lokr_w2_a"), (".lokr_w2_b", "lokr_w2_b"), (".lokr_t2", "lokr_t2"),
        (".diff", "diff"), (".diff_b", "diff_b"), (".w_norm", "w_norm"), (".b_norm", "b_norm"),
        (".a1.weight", "a1.weight"), (".a2.weight", "a2.weight"), (".b1.weight", "b1.weight"), (".b2.weight", "b2.weight"),
        // (IA)^3: the plain ".weight" is tried last, after every longer suffix.
        (".on_input", "on_input"), (".weight", "weight"),
    ];

    private static readonly (string Suffix, string Role)[] LongestFirst = [.. Suffixes.OrderByDescending(s => s.Suffix.Length)];

    /// <summary>Splits a network key into module name and canonical role; false when no known suffix matches.</summary>
    public static bool TrySplit(string key, out string module, out string role)
    {
        foreach (var (suffix, r) in LongestFirst)
        {
            if (key.Length > suffix.Length && key.EndsWith(suffix, StringComparison.Ordinal))
            {
                module = key[..^suffix.Length];
                role = r;
                return true;
            }
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
        string[] common = Present(Alpha, DoraScale);

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
