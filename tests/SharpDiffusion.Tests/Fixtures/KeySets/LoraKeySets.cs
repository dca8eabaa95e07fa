using SharpDiffusion.Formats;

namespace SharpDiffusion.Tests.Fixtures.KeySets;

/// <summary>
/// Writes LoRA-family files over a module list, with the key names and shapes each algorithm stores
/// (kohya networks/lora.py and LyCORIS modules): lora/locon, loha, lokr, ia3, dora, full, glora, norm;
/// and the PEFT / diffusers key styles.
/// </summary>
public static class LoraKeySets
{
    /// <summary>Kohya/LyCORIS style: <c>lora_unet_*</c>, <c>lora_te_*</c> or <c>lora_te1_/te2_</c> with per-algorithm suffixes.</summary>
    public static KeySet Kohya(IEnumerable<LoraTarget> targets, string algorithm, int rank = 8, double alpha = 4, bool sdxl = false, TensorDType dtype = TensorDType.F16)
    {
        var set = new KeySet();
        foreach (var t in targets)
        {
            var m = t.KohyaName(sdxl);
            long[] kernel = t.IsConv ? new[] { t.WeightShape[2], t.WeightShape[3] } : Array.Empty<long>();
            long kernelArea = t.IsConv ? t.WeightShape[2] * t.WeightShape[3] : 1;
            switch (algorithm)
            {
                case "lora":
                case "locon":
                case "dora":
                    set.Add(m + ".lora_down.weight", dtype, t.IsConv ? new[] { rank, t.In }.Concat(kernel).ToArray() : new[] { (long)rank, t.In });
                    set.Add(m + ".lora_up.weight", dtype, t.IsConv ? new[] { t.Out, rank, 1, 1 } : new[] { t.Out, (long)rank });
                    set.AddScalar(m + ".alpha", dtype, alpha);
                    if (algorithm == "dora") set.Add(m + ".dora_scale", dtype, t.Out, 1);
                    break;
                case "loha":
                    set.Add(m + ".hada_w1_a", dtype, t.Out, rank);
                    set.Add(m + ".hada_w1_b", dtype, rank, t.In * kernelArea);
                    set.Add(m + ".hada_w2_a", dtype, t.Out, rank);
                    set.Add(m + ".hada_w2_b", dtype, rank, t.In * kernelArea);
                    set.AddScalar(m + ".alpha", dtype, alpha);
                    break;
                case "lokr":
                    // factor 4: W = kron(w1 [4,4], w2_a @ w2_b [out/4, in/4])
                    set.Add(m + ".lokr_w1", dtype, 4, 4);
                    set.Add(m + ".lokr_w2_a", dtype, t.Out / 4, rank);
                    set.Add(m + ".lokr_w2_b", dtype, rank, t.In / 4 * kernelArea);
                    set.AddScalar(m + ".alpha", dtype, alpha);
                    break;
                case "ia3":
                    bool onInput = t.Path.EndsWith("ff.net.2", StringComparison.Ordinal) || t.Path.EndsWith("mlp.fc2", StringComparison.Ordinal);
                    set.Add(m + ".weight", dtype, onInput ? t.In : t.Out);
                    set.Add(m + ".on_input", TensorDType.Bool);
                    break;
                case "full":
                    set.Add(m + ".diff", dtype, t.WeightShape);
                    set.Add(m + ".diff_b", dtype, t.Out);
                    break;
                case "glora":
                    set.Add(m + ".a1.weight", dtype, rank, t.In);
                    set.Add(m + ".a2.weight", dtype, t.In, rank);
                    set.Add(m + ".b1.weight", dtype, rank, t.In);
                    set.Add(m + ".b2.weight", dtype, t.Out, rank);
                    set.AddScalar(m + ".alpha", dtype, alpha);
                    break;
                case "norm":
                    set.Add(m + ".w_norm", dtype, t.Out);
                    set.Add(m + ".b_norm", dtype, t.Out);
                    break;
                default:
                    throw new ArgumentException("unknown algorithm " + algorithm, nameof(algorithm));
            }
        }
        return set;
    }

    /// <summary>PEFT style: <c>base_model.model.&lt;path&gt;.lora_A.weight</c> / <c>lora_B.weight</c>, or with a component prefix.</summary>
    public static KeySet Peft(IEnumerable<LoraTarget> targets, int rank, bool componentPrefix, TensorDType dtype = TensorDType.F32)
    {
        var set = new KeySet();
        foreach (var t in targets)
        {
            var m = (componentPrefix ? t.Component + "." : "base_model.model.") + t.Path;
            set.Add(m + ".lora_A.weight", dtype, rank, t.In);
            set.Add(m + ".lora_B.weight", dtype, t.Out, rank);
        }
        return set;
    }

    /// <summary>diffusers style: <c>unet.&lt;path&gt;.lora.down.weight</c>, text encoder <c>.lora_linear_layer.down.weight</c>.</summary>
    public static KeySet Diffusers(IEnumerable<LoraTarget> targets, int rank, TensorDType dtype = TensorDType.F32)
    {
        var set = new KeySet();
        foreach (var t in targets)
        {
            var layer = t.Component == "unet" ? ".lora." : ".lora_linear_layer.";
            var m = t.Component + "." + t.Path;
            set.Add(m + layer + "down.weight", dtype, rank, t.In);
            set.Add(m + layer + "up.weight", dtype, t.Out, rank);
        }
        return set;
    }

    /// <summary>The reference kohya SD1.5 LoRA (rank 8, alpha 4) from the inventory, with alpha bytes.</summary>
    public static KeySet ReferenceSD15()
    {
        var set = new KeySet();
        foreach (var e in ReferenceTsv.Load("sd15_kohya_lora_rank8.tsv"))
        {
            if (e.Name.EndsWith(".alpha", StringComparison.Ordinal)) set.AddScalar(e.Name, e.DType, 4);
            else set.Entries.Add(e);
        }
        return set;
    }
}
