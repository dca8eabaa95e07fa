using SharpDiffusion.Conversion;

namespace SharpDiffusion.Inspection;

/// <summary>The role a key plays inside one LoRA-family module.</summary>
internal enum LoraPart
{
    Down,
    Up,
    Mid,
    Alpha,
    DoraScale,
    Loha,
    Lokr,
    Full,
    Glora,
    Norm,
    Ia3Flag,
}

/// <summary>One parsed LoRA key: the module it adapts, the part, the exact suffix and the key style.</summary>
internal readonly record struct LoraKey(string Module, LoraPart Part, string Suffix, string Style);

/// <summary>
/// Splits LoRA-family keys into module name and part with the suffix table generation uses
/// (<see cref="NetworkTensorRoles.Suffixes"/>): kohya/LyCORIS suffixes (<c>.lora_down.weight</c>,
/// <c>.hada_w1_a</c>, <c>.lokr_w1</c>, <c>.diff</c>, <c>.a1.weight</c>, <c>.w_norm</c>, <c>.on_input</c>,
/// <c>.dora_scale</c>), PEFT (<c>.lora_A.weight</c>, DoRA's <c>.lora_magnitude_vector</c>) and diffusers (<c>.lora.down.weight</c>,
/// <c>.lora_linear_layer.down.weight</c>, attention-processor <c>to_q_lora.down.weight</c>).
/// IA3's <c>.weight</c> is ambiguous on its own; <see cref="LoraDetector"/> pairs it with <c>.on_input</c>.
/// </summary>
internal static class LoraKeyParser
{
    public const string Kohya = "kohya";
    public const string Peft = NetworkTensorRoles.PeftStyle;
    public const string Diffusers = NetworkTensorRoles.DiffusersStyle;

    // The shared suffix table (generation splits keys with the same one), longest suffixes first so
    // ".lora_linear_layer.down.weight" wins over shorter endings. IA3's plain ".weight" is left out here.
    private static readonly (string Suffix, LoraPart Part, string? Style)[] Suffixes =
        [.. NetworkTensorRoles.Suffixes
            .Where(s => s.Suffix != NetworkTensorRoles.Ia3WeightSuffix)
            .Select(s => (s.Suffix, PartOf(s.Role), s.Style))];

    /// <summary>The part a canonical role plays for classification (the factors of one algorithm count as one part).</summary>
    private static LoraPart PartOf(string role) => role switch
    {
        NetworkTensorRoles.Up => LoraPart.Up,
        NetworkTensorRoles.Down => LoraPart.Down,
        NetworkTensorRoles.Mid => LoraPart.Mid,
        NetworkTensorRoles.Alpha => LoraPart.Alpha,
        NetworkTensorRoles.DoraScale or NetworkTensorRoles.DoraMagnitude => LoraPart.DoraScale,
        "on_input" => LoraPart.Ia3Flag,
        "diff" or "diff_b" => LoraPart.Full,
        "w_norm" or "b_norm" => LoraPart.Norm,
        "a1.weight" or "a2.weight" or "b1.weight" or "b2.weight" => LoraPart.Glora,
        _ when role.StartsWith("hada_", StringComparison.Ordinal) => LoraPart.Loha,
        _ when role.StartsWith("lokr_", StringComparison.Ordinal) => LoraPart.Lokr,
        _ => throw new InvalidOperationException($"network tensor role '{role}' has no classification part"),
    };

    private static readonly string[] KohyaPrefixes = { "lora_unet_", "lora_te_", "lora_te1_", "lora_te2_", "lora_te3_", "lycoris_" };

    /// <summary>
    /// Suffixes grouped by their last segment (two segments for "*.weight"), so a checkpoint's thousands of keys
    /// are rejected with one hash lookup each instead of dozens of string comparisons.
    /// </summary>
    private static readonly Dictionary<string, (string Suffix, LoraPart Part, string? Style)[]> ByTail =
        Suffixes.GroupBy(s => Tail(s.Suffix).ToString(), StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);

    private static readonly Dictionary<string, (string Suffix, LoraPart Part, string? Style)[]>.AlternateLookup<ReadOnlySpan<char>> ByTailSpan =
        ByTail.GetAlternateLookup<ReadOnlySpan<char>>();

    private static ReadOnlySpan<char> Tail(string name)
    {
        int last = name.LastIndexOf('.');
        if (last < 0) return name;
        var tail = name.AsSpan(last + 1);
        if (!tail.SequenceEqual("weight") || last == 0) return tail;
        int previous = name.LastIndexOf('.', last - 1);
        return name.AsSpan(previous + 1);
    }

    public static bool TryParse(string name, out LoraKey key)
    {
        if (ByTailSpan.TryGetValue(Tail(name), out var candidates))
        {
            foreach (var (suffix, part, style) in candidates)
            {
                if (!name.EndsWith(suffix, StringComparison.Ordinal) || name.Length == suffix.Length) continue;
                var module = name[..^suffix.Length];
                key = new LoraKey(module, part, suffix, style ?? StyleOf(module));
                return true;
            }
        }
        key = default;
        return false;
    }

    public static bool IsKohyaModule(string module)
    {
        foreach (var p in KohyaPrefixes)
        {
            if (module.StartsWith(p, StringComparison.Ordinal)) return true;
        }
        return false;
    }

    /// <summary>kohya names are flattened with underscores; anything dotted is diffusers-style.</summary>
    private static string StyleOf(string module) => IsKohyaModule(module) || !module.Contains('.') ? Kohya : Diffusers;

    /// <summary>unet, text_encoder, text_encoder_2 or text_encoder_3, from the module's prefix.</summary>
    public static string TargetOf(string module)
    {
        if (module.StartsWith("lora_te2_", StringComparison.Ordinal)) return "text_encoder_2";
        if (module.StartsWith("lora_te3_", StringComparison.Ordinal)) return "text_encoder_3";
        if (module.StartsWith("lora_te_", StringComparison.Ordinal) || module.StartsWith("lora_te1_", StringComparison.Ordinal)) return "text_encoder";
        if (module.StartsWith("lora_unet_", StringComparison.Ordinal)) return "unet";

        var m = module.StartsWith("base_model.model.", StringComparison.Ordinal) ? module["base_model.model.".Length..] : module;
        if (m.StartsWith("text_encoder_2.", StringComparison.Ordinal)) return "text_encoder_2";
        if (m.StartsWith("text_encoder_3.", StringComparison.Ordinal)) return "text_encoder_3";
        if (m.StartsWith("text_encoder.", StringComparison.Ordinal) || m.StartsWith("te.", StringComparison.Ordinal)) return "text_encoder";
        if (m.Contains("text_model", StringComparison.Ordinal) || m.Contains("self_attn", StringComparison.Ordinal)) return "text_encoder";
        return "unet";
    }

    /// <summary>Layers only LoCon-style training touches: ResNet convs, samplers, stems.</summary>
    public static bool IsConvLayerName(string module)
    {
        if (module.Contains("time_emb_proj", StringComparison.Ordinal) || module.Contains("emb_layers", StringComparison.Ordinal)) return false;
        return module.Contains("resnets", StringComparison.Ordinal) || module.Contains("samplers", StringComparison.Ordinal)
            || module.Contains("conv_in", StringComparison.Ordinal) || module.Contains("conv_out", StringComparison.Ordinal)
            || module.Contains("in_layers", StringComparison.Ordinal) || module.Contains("out_layers", StringComparison.Ordinal)
            || module.Contains("skip_connection", StringComparison.Ordinal) || module.EndsWith("_op", StringComparison.Ordinal)
            || module.EndsWith(".op", StringComparison.Ordinal) || module.EndsWith("_conv", StringComparison.Ordinal)
            || module.EndsWith(".conv", StringComparison.Ordinal);
    }
}
