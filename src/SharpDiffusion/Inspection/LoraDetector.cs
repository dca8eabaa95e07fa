using SharpDiffusion.Architectures;
using System.Buffers.Binary;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>
/// LoRA-family networks (LoRA, LoCon, LoHa, LoKr, IA3, DoRA, full diff, GLoRA, norm) in kohya, PEFT and diffusers
/// key styles: algorithm, ranks (from the down/A shapes), alphas (the one place tensor data is read: the tiny
/// <c>.alpha</c> scalars), targets, module count and the base family the modules were shaped for.
/// </summary>
internal static class LoraDetector
{
    /// <summary>Specific LyCORIS algorithms outrank plain LoRA when a file mixes module types; norm modules ride along.</summary>
    private static readonly string[] AlgorithmPriority = { "loha", "lokr", "glora", "ia3", "full", "dora", "locon", "lora", "norm" };

    private sealed class Module
    {
        public Module(string name, string style) { Name = name; Style = style; }
        public string Name { get; }
        public string Style { get; }
        public Dictionary<string, TensorInfo> Parts { get; } = new(StringComparer.Ordinal);
        public HashSet<LoraPart> Kinds { get; } = new();
        public TensorInfo? Part(string suffix) => Parts.GetValueOrDefault(suffix);
    }

    public static bool TryDetect(TensorIndex index, ModelClassification result)
    {
        var modules = new Dictionary<string, Module>(StringComparer.Ordinal);
        int parsed = 0;
        foreach (var t in index.Tensors)
        {
            if (!LoraKeyParser.TryParse(t.Name, out var key)) continue;
            parsed++;
            if (!modules.TryGetValue(key.Module, out var m)) modules[key.Module] = m = new Module(key.Module, key.Style);
            m.Parts[key.Suffix] = t;
            m.Kinds.Add(key.Part);
        }
        // IA3 stores a plain ".weight" next to ".on_input"; pair them now that the flags are known.
        bool hasIa3 = modules.Values.Any(m => m.Kinds.Contains(LoraPart.Ia3Flag));
        foreach (var t in hasIa3 ? index.Tensors : Array.Empty<TensorInfo>())
        {
            if (!t.Name.EndsWith(".weight", StringComparison.Ordinal)) continue;
            var name = t.Name[..^".weight".Length];
            if (modules.TryGetValue(name, out var m) && m.Kinds.Contains(LoraPart.Ia3Flag) && m.Parts.TryAdd(".weight", t)) parsed++;
        }

        // A network's keys are nearly all LoRA parts; a checkpoint's stray matches (or alphas alone) are not a network.
        if (parsed * 2 < index.Count) return false;
        var real = modules.Values.Where(m => m.Kinds.Any(k => k != LoraPart.Alpha)).ToList();
        if (real.Count == 0) return false;

        var details = new LoraDetails { Modules = real.Count };
        result.Kind = ModelKind.Lora;
        result.Lora = details;

        var algorithms = real.Select(m => AlgorithmOf(m)).ToHashSet(StringComparer.Ordinal);
        details.Algorithm = AlgorithmPriority.First(algorithms.Contains);
        details.ConvModules = real.Count(IsConvModule);
        details.Style = real.GroupBy(m => m.Style).OrderByDescending(g => g.Count()).First().Key;
        foreach (var target in new[] { "unet", "text_encoder", "text_encoder_2", "text_encoder_3" })
        {
            if (real.Any(m => LoraKeyParser.TargetOf(m.Name) == target)) details.Targets.Add(target);
        }
        details.Ranks.AddRange(real.Select(RankOf).OfType<int>().Distinct().Order());
        details.Alphas.AddRange(ReadAlphas(index, modules.Values).Distinct().Order());

        var sample = real.First(m => AlgorithmOf(m) == details.Algorithm);
        var sampleKey = TellingPart(sample, details.Algorithm);
        Evidence.Add(result, Evidence.Key(sampleKey, $"{details.Algorithm} module in {details.Style} style ({details.Modules} modules, "
            + (details.Ranks.Count > 0 ? "rank " + string.Join("/", details.Ranks) : "no rank") + ")"));
        if (details.Algorithm == "locon")
        {
            var conv = real.First(IsConvModule);
            Evidence.Add(result, Evidence.Key(conv.Parts.First().Value, "LoRA on a convolution layer (LoCon)"));
        }

        DetectFamily(index, result, real);
        KohyaMetadata.Apply(index, result, details);
        return true;
    }

    /// <summary>The key that shows the algorithm best (the DoRA scale, not the alpha), for the evidence line.</summary>
    private static TensorInfo TellingPart(Module m, string algorithm)
    {
        string[] preferred = algorithm switch
        {
            "dora" => new[] { ".dora_scale", ".lora_magnitude_vector", ".lora_magnitude_vector.weight" },
            "loha" => new[] { ".hada_w1_a" },
            "lokr" => new[] { ".lokr_w1", ".lokr_w1_a" },
            "glora" => new[] { ".a1.weight" },
            "full" => new[] { ".diff" },
            "ia3" => new[] { ".on_input" },
            "norm" => new[] { ".w_norm" },
            _ => Array.Empty<string>(),
        };
        foreach (var suffix in preferred)
        {
            if (m.Part(suffix) is { } t) return t;
        }
        return DownOf(m) ?? m.Parts.Values.FirstOrDefault(t => !t.Name.EndsWith(".alpha", StringComparison.Ordinal)) ?? m.Parts.Values.First();
    }

    private static string AlgorithmOf(Module m)
    {
        if (m.Kinds.Contains(LoraPart.Loha)) return "loha";
        if (m.Kinds.Contains(LoraPart.Lokr)) return "lokr";
        if (m.Kinds.Contains(LoraPart.Glora)) return "glora";
        if (m.Kinds.Contains(LoraPart.Ia3Flag)) return "ia3";
        if (m.Kinds.Contains(LoraPart.Full)) return "full";
        if (m.Kinds.Contains(LoraPart.Down) || m.Kinds.Contains(LoraPart.Up))
        {
            if (m.Kinds.Contains(LoraPart.DoraScale)) return "dora";
            return IsConvModule(m) ? "locon" : "lora";
        }
        return m.Kinds.Contains(LoraPart.Norm) ? "norm" : "lora";
    }

    private static TensorInfo? DownOf(Module m) => m.Parts.Values.FirstOrDefault(t => t.Name.EndsWith("down.weight", StringComparison.Ordinal)
        || t.Name.EndsWith(".lora_A.weight", StringComparison.Ordinal) || t.Name.EndsWith(".lora_A.default.weight", StringComparison.Ordinal));

    private static bool IsConvModule(Module m)
    {
        var down = DownOf(m);
        if (down is { Rank: 4 } && down.Shape[2] * down.Shape[3] > 1) return true;
        if (m.Kinds.Contains(LoraPart.Norm) && !m.Kinds.Contains(LoraPart.Down)) return false;
        return LoraKeyParser.IsConvLayerName(m.Name);
    }

    private static int? RankOf(Module m)
    {
        var down = DownOf(m);
        if (down != null && down.Rank >= 2) return (int)down.Shape[0];
        if (m.Part(".hada_w1_b") is { Rank: >= 1 } w1b) return (int)w1b.Shape[0];
        if (m.Part(".lokr_w2_b") is { Rank: >= 1 } w2b) return (int)w2b.Shape[0];
        if (m.Part(".lokr_w1_b") is { Rank: >= 1 } w1kb) return (int)w1kb.Shape[0];
        if (m.Part(".a1.weight") is { Rank: >= 1 } a1) return (int)a1.Shape[0];
        return null;
    }

    /// <summary>The module's input width (for attn2.to_k: the cross-attention context), when the parts show it.</summary>
    private static int? InputWidthOf(Module m)
    {
        var down = DownOf(m) ?? m.Part(".hada_w1_b") ?? m.Part(".a1.weight") ?? m.Part(".diff");
        if (down is { Rank: >= 2 }) return (int)down.Shape[1];
        var w1 = m.Part(".lokr_w1") ?? m.Part(".lokr_w1_b");
        var w2 = m.Part(".lokr_w2") ?? m.Part(".lokr_w2_b");
        if (w1 is { Rank: 2 } && w2 is { Rank: 2 }) return (int)(w1.Shape[1] * w2.Shape[1]);
        return null;
    }

    private static IEnumerable<double> ReadAlphas(TensorIndex index, IEnumerable<Module> modules)
    {
        Span<byte> buffer = stackalloc byte[8];
        var values = new List<double>();
        foreach (var m in modules)
        {
            var alpha = m.Part(".alpha");
            if (alpha == null || alpha.ElementCount != 1 || alpha.ByteLength is < 1 or > 8) continue;
            var bytes = buffer[..(int)alpha.ByteLength];
            try
            {
                index.File.ReadTensorData(alpha, bytes);
            }
            catch (Exception e) when (e is IOException or InvalidModelFileException or ArgumentException or InvalidOperationException or NotSupportedException)
            {
                continue; // an unreadable alpha only loses the alpha figure, not the classification
            }
            double? v = alpha.DType switch
            {
                TensorDType.F32 => BinaryPrimitives.ReadSingleLittleEndian(bytes),
                TensorDType.F16 => (double)BinaryPrimitives.ReadHalfLittleEndian(bytes),
                TensorDType.BF16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes) << 16),
                TensorDType.F64 => BinaryPrimitives.ReadDoubleLittleEndian(bytes),
                TensorDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(bytes),
                TensorDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(bytes),
                _ => null,
            };
            if (v is double d && double.IsFinite(d)) values.Add(Math.Round(d, 4));
        }
        return values;
    }

    private static void DetectFamily(TensorIndex index, ModelClassification result, List<Module> modules)
    {
        var flux = modules.FirstOrDefault(m => m.Name.Contains("double_blocks", StringComparison.Ordinal)
            || m.Name.Contains("single_blocks", StringComparison.Ordinal) || m.Name.Contains("single_transformer_blocks", StringComparison.Ordinal));
        if (flux != null)
        {
            result.Base = BaseFamily.Flux;
            Evidence.Add(result, flux.Name + ": Flux double/single-stream block (Flux)");
            return;
        }
        var sd3 = modules.FirstOrDefault(m => m.Name.Contains("joint_blocks", StringComparison.Ordinal));
        if (sd3 != null)
        {
            result.Base = BaseFamily.SD3;
            Evidence.Add(result, sd3.Name + ": MMDiT joint block (SD3)");
            return;
        }

        foreach (var m in modules)
        {
            if (LoraKeyParser.TargetOf(m.Name) != "unet") continue;
            if (!(m.Name.EndsWith("attn2_to_k", StringComparison.Ordinal) || m.Name.EndsWith("attn2.to_k", StringComparison.Ordinal)
                || m.Name.EndsWith("attn2.processor.to_k", StringComparison.Ordinal))) continue;
            if (InputWidthOf(m) is not int context) continue;
            if (ModelArchitectures.FamilyOfContextWidth(context) is BaseFamily f)
            {
                result.Base = f;
                Evidence.Add(result, $"{m.Name} adapts a cross-attention key projection with input {context}: context {context} ({Evidence.Family(f)})");
                return;
            }
        }

        var te2 = modules.FirstOrDefault(m => LoraKeyParser.TargetOf(m.Name) == "text_encoder_2");
        if (te2 != null)
        {
            result.Base = BaseFamily.SDXL;
            Evidence.Add(result, te2.Name + ": second text encoder (OpenCLIP bigG) targeted: SDXL");
            return;
        }
        var te1 = modules.FirstOrDefault(m => m.Name.StartsWith("lora_te1_", StringComparison.Ordinal));
        if (te1 != null)
        {
            result.Base = BaseFamily.SDXL;
            Evidence.Add(result, te1.Name + ": kohya numbers the text encoders (te1) only for two-encoder SDXL");
            return;
        }
        var ldmNames = modules.FirstOrDefault(m => m.Name.StartsWith("lora_unet_input_blocks_", StringComparison.Ordinal)
            || m.Name.StartsWith("lora_unet_output_blocks_", StringComparison.Ordinal) || m.Name.StartsWith("lora_unet_middle_block_", StringComparison.Ordinal));
        if (ldmNames != null)
        {
            result.Base = BaseFamily.SDXL;
            Evidence.Add(result, ldmNames.Name + ": kohya SDXL names the U-Net modules in LDM layout (input_blocks/output_blocks): SDXL");
            return;
        }
        foreach (var m in modules)
        {
            if (LoraKeyParser.TargetOf(m.Name) != "text_encoder" || !(m.Name.Contains("q_proj", StringComparison.Ordinal) || m.Name.Contains("fc1", StringComparison.Ordinal))) continue;
            if (InputWidthOf(m) is not int width) continue;
            // Only a family with a single text encoder of this width is told by it (a lone 768 is SD1's CLIP ViT-L).
            if (ModelArchitectures.FamiliesWithSingleEncoderWidth(width) is [var family])
            {
                result.Base = family;
                var encoder = ModelArchitectures.Of(family).TextEncoders[0];
                Evidence.Add(result, $"{m.Name} input width {width}: text encoder {encoder.Kind.DisplayName()} ({family.DisplayName()})");
                return;
            }
        }

        if (KohyaMetadata.FamilyFromMetadata(index, out var fromMeta, out var line))
        {
            result.Base = fromMeta;
            Evidence.Add(result, line + " (the weights do not tell)");
        }
        else
        {
            Evidence.Add(result, "no module shows a family-specific width (cross-attention context or text-encoder width): base unknown");
        }
    }
}
