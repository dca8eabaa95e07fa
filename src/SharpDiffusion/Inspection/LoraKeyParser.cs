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
/// Splits LoRA-family keys into module name and part, covering kohya/LyCORIS suffixes (<c>.lora_down.weight</c>,
/// <c>.hada_w1_a</c>, <c>.lokr_w1</c>, <c>.diff</c>, <c>.a1.weight</c>, <c>.w_norm</c>, <c>.on_input</c>,
/// <c>.dora_scale</c>), PEFT (<c>.lora_A.weight</c>) and diffusers (<c>.lora.down.weight</c>,
/// <c>.lora_linear_layer.down.weight</c>, attention-processor <c>to_q_lora.down.weight</c>).
/// IA3's <c>.weight</c> is ambiguous on its own; <see cref="LoraDetector"/> pairs it with <c>.on_input</c>.
/// </summary>
internal static class LoraKeyParser
{
    public const string Kohya = "kohya";
    public const string Peft = "peft";
    public const string Diffusers = "diffusers";

    // Longest suffixes first so ".lora_linear_layer.down.weight" wins over shorter endings.
    private static readonly (string Suffix, LoraPart Part, string? Style)[] Suffixes =
    {
        (".lora_linear_layer.down.weight", LoraPart.Down, Diffusers),
        (".lora_linear_layer.up.weight", LoraPart.Up, Diffusers),
        (".lora_magnitude_vector.weight", LoraPart.DoraScale, Peft),
        (".lora_A.default.weight", LoraPart.Down, Peft),
        (".lora_B.default.weight", LoraPart.Up, Peft),
        (".lora_magnitude_vector", LoraPart.DoraScale, Peft),
        ("_lora.down.weight", LoraPart.Down, Diffusers),
        ("_lora.up.weight", LoraPart.Up, Diffusers),
        (".lora_down.weight", LoraPart.Down, null),
        (".lora_mid.weight", LoraPart.Mid, null),
        (".lora_up.weight", LoraPart.Up, null),
        (".lora.down.weight", LoraPart.Down, Diffusers),
        (".lora.up.weight", LoraPart.Up, Diffusers),
        (".lora_A.weight", LoraPart.Down, Peft),
        (".lora_B.weight", LoraPart.Up, Peft),
        (".dora_scale", LoraPart.DoraScale, null),
        (".hada_w1_a", LoraPart.Loha, null),
        (".hada_w1_b", LoraPart.Loha, null),
        (".hada_w2_a", LoraPart.Loha, null),
        (".hada_w2_b", LoraPart.Loha, null),
        (".hada_t1", LoraPart.Loha, null),
        (".hada_t2", LoraPart.Loha, null),
        (".lokr_w1_a", LoraPart.Lokr, null),
        (".lokr_w1_b", LoraPart.Lokr, null),
        (".lokr_w2_a", LoraPart.Lokr, null),
        (".lokr_w2_b", LoraPart.Lokr, null),
        (".lokr_w1", LoraPart.Lokr, null),
        (".lokr_w2", LoraPart.Lokr, null),
        (".lokr_t2", LoraPart.Lokr, null),
        (".a1.weight", LoraPart.Glora, null),
        (".a2.weight", LoraPart.Glora, null),
        (".b1.weight", LoraPart.Glora, null),
        (".b2.weight", LoraPart.Glora, null),
        (".on_input", LoraPart.Ia3Flag, null),
        (".w_norm", LoraPart.Norm, null),
        (".b_norm", LoraPart.Norm, null),
        (".diff_b", LoraPart.Full, null),
        (".diff", LoraPart.Full, null),
        (".alpha", LoraPart.Alpha, null),
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
