using System.Runtime.InteropServices;
using SharpDiffusion.Conversion;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Networks;

/// <summary>
/// The weight change of one network module, in float32, following ComfyUI's <c>comfy/weight_adapter</c> and LyCORIS:
/// a raw difference shaped like the weight, a scale (alpha / rank when the module has low-rank factors, 1 otherwise
/// or when alpha is absent), the strength, and DoRA's re-normalisation when the module has <c>dora_scale</c> (kohya,
/// LyCORIS) or <c>lora_magnitude_vector</c> (PEFT).
/// </summary>
public static class NetworkWeightMath
{
    /// <summary>The weight after applying <paramref name="module"/> at <paramref name="strength"/> (float32, new tensor).</summary>
    public static Tensor PatchedWeight(NetworkModuleWeights module, Tensor weight, double strength)
    {
        using var scope = NewDisposeScope();
        var w = weight.to(ScalarType.Float32);
        var (diff, scale) = Difference(module, w);
        Tensor result;
        if (!HasDora(module))
        {
            result = w + diff * (strength * scale);
        }
        else
        {
            // W' = m * (W + s*dW) / ||W + s*dW||, then blended with W by the strength (ComfyUI weight_decompose).
            var combined = w + diff * scale;
            var (magnitude, norm) = DoraFactors(module, combined);
            var decomposed = combined * (magnitude / norm);
            result = w + (decomposed - w) * strength;
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Changes <paramref name="weight"/> (any floating dtype; a contiguous row block of a larger weight is fine) in place
    /// to <see cref="PatchedWeight"/>'s value rounded to the weight's dtype. A plain LoRA whose factors fit the weight is
    /// added without weight-sized temporaries: <c>addmm_</c> straight into a float32 weight, otherwise a float32
    /// <c>up·down</c> in <paramref name="scratch"/> added with one <c>add_</c> (the sum is formed in float32, as
    /// <see cref="PatchedWeight"/> does, then rounded once). Every other module goes through <see cref="PatchedWeight"/>.
    /// </summary>
    public static void AddInPlace(NetworkModuleWeights module, Tensor weight, double strength, Float32Scratch? scratch = null)
    {
        if (LowRankFactors(module, weight) is { } factors)
        {
            var (up, down, rank) = factors;
            using (up)
            using (down)
            {
                double factor = strength * Scale(module, rank);
                long rows = up.shape[0], columns = down.shape[1];
                if (weight.dtype == ScalarType.Float32 && weight.is_contiguous())
                {
                    using var flat = weight.view(rows, columns);
                    flat.addmm_(up, down, beta: 1, alpha: (float)factor);
                    return;
                }
                // weight = round(float(weight) + delta): widened, added and narrowed in reused float32 buffers. The same
                // bits as weight.add_(delta), whose mixed-type arithmetic allocates weight-sized temporaries (slow to
                // fault in) on every call.
                using var ownScratch = scratch is null ? new Float32Scratch() : null;
                var buffers = scratch ?? ownScratch!;
                using var delta = buffers.Matrix(rows, columns);
                delta.addmm_(up, down, beta: 0, alpha: (float)factor);
                using var widened = buffers.Matrix(rows, columns, slot: 1);
                using var flatWeight = weight.is_contiguous() ? weight.view(rows, columns) : null;
                if (flatWeight is null)
                {
                    using var shaped = delta.view(weight.shape);
                    weight.add_(shaped);
                    return;
                }
                widened.copy_(flatWeight);
                widened.add_(delta);
                flatWeight.copy_(widened);
                return;
            }
        }
        using var patched = PatchedWeight(module, weight, strength);
        weight.copy_(patched);
    }

    /// <summary>
    /// A plain LoRA's factors as [out, rank] and [rank, in] float32 matrices when they fit <paramref name="weight"/>
    /// exactly (out rows, in = the weight's other dims flattened); null for every other case, which the general path handles.
    /// </summary>
    private static (Tensor Up, Tensor Down, long Rank)? LowRankFactors(NetworkModuleWeights m, Tensor weight)
    {
        if (m.Algorithm != NetworkAlgorithm.LoRA || m[NetworkTensorRoles.Mid] is not null || HasDora(m)) return null;
        if (m[NetworkTensorRoles.Up] is not { } up || m[NetworkTensorRoles.Down] is not { } down) return null;
        if (up.dtype != ScalarType.Float32 || down.dtype != ScalarType.Float32 || up.dim() < 2 || down.dim() < 2 || weight.dim() < 1) return null;
        long rows = weight.shape[0], columns = weight.numel() / Math.Max(1, rows);
        long upColumns = up.numel() / up.shape[0], downColumns = down.numel() / down.shape[0];
        if (up.shape[0] != rows || upColumns != down.shape[0] || downColumns != columns) return null;
        return (up.reshape(rows, upColumns), down.reshape(down.shape[0], columns), down.shape[0]);
    }

    /// <summary>The change <c>PatchedWeight - weight</c> (float32, shaped like the weight).</summary>
    public static Tensor Delta(NetworkModuleWeights module, Tensor weight, double strength)
    {
        using var scope = NewDisposeScope();
        var w = weight.to(ScalarType.Float32);
        if (HasDora(module)) return (PatchedWeight(module, w, strength) - w).MoveToOuterDisposeScope();
        var (diff, scale) = Difference(module, w);
        return (diff * (strength * scale)).MoveToOuterDisposeScope();
    }

    /// <summary>The bias after the module's <c>diff_b</c> / <c>b_norm</c> at <paramref name="strength"/>; null when it changes no bias.</summary>
    public static Tensor? PatchedBias(NetworkModuleWeights module, Tensor bias, double strength)
    {
        var change = module["diff_b"] ?? module["b_norm"];
        if (change is null) return null;
        using var scope = NewDisposeScope();
        var b = bias.to(ScalarType.Float32);
        return (b + change.reshape(b.shape) * strength).MoveToOuterDisposeScope();
    }

    /// <summary>The raw difference (before scale and strength) shaped like <paramref name="w"/>, and its scale.</summary>
    private static (Tensor Diff, double Scale) Difference(NetworkModuleWeights m, Tensor w)
    {
        try
        {
            return m.Algorithm switch
            {
                NetworkAlgorithm.LoRA => LoRA(m, w),
                NetworkAlgorithm.LoHa => LoHa(m, w),
                NetworkAlgorithm.LoKr => LoKr(m, w),
                NetworkAlgorithm.IA3 => IA3(m, w),
                NetworkAlgorithm.Full => (m["diff"]?.reshape(w.shape) ?? zeros_like(w), 1.0),
                NetworkAlgorithm.Norm => (m.Required("w_norm").reshape(w.shape), 1.0),
                NetworkAlgorithm.GLoRA => GLoRA(m, w),
                _ => throw new NotSupportedException($"network module {m.Name}: algorithm {m.Algorithm}"),
            };
        }
        catch (Exception e) when (e is ExternalException or ArgumentException)
        {
            throw new InvalidOperationException(
                $"network module {m.Name} ({m.Algorithm}) does not fit weight {m.Target.WeightKey} [{string.Join(", ", w.shape)}]: {FirstLine(e.Message)}", e);
        }
    }

    private static (Tensor, double) LoRA(NetworkModuleWeights m, Tensor w)
    {
        var up = m.Required(NetworkTensorRoles.Up);
        var down = m.Required(NetworkTensorRoles.Down);
        var mid = m[NetworkTensorRoles.Mid];
        long rank = down.shape[0];
        Tensor diff;
        if (mid is null)
        {
            // Linear, 1x1 conv, or kohya LoCon: k x k down, 1x1 up -> flatten, multiply, reshape.
            diff = up.flatten(1).mm(down.flatten(1));
        }
        else
        {
            // CP/Tucker LoCon: dW[o,i,k..] = sum up[o,m] mid[m,n,k..] down[n,i]
            diff = einsum("m n ..., i m, n j -> i j ...", mid, up.reshape(up.shape[0], up.shape[1]), down.reshape(down.shape[0], down.shape[1]));
        }
        return (diff.reshape(w.shape), Scale(m, rank));
    }

    private static (Tensor, double) LoHa(NetworkModuleWeights m, Tensor w)
    {
        var w1a = m.Required("hada_w1_a");
        var w1b = m.Required("hada_w1_b");
        var w2a = m.Required("hada_w2_a");
        var w2b = m.Required("hada_w2_b");
        var t1 = m["hada_t1"];
        var t2 = m["hada_t2"];
        Tensor m1, m2;
        if (t1 is not null && t2 is not null)
        {
            // Tucker: w*_a is [rank, out], w*_b [rank, in], t* [rank, rank, k...]
            m1 = einsum("i j ..., j r, i p -> p r ...", t1, w1b, w1a);
            m2 = einsum("i j ..., j r, i p -> p r ...", t2, w2b, w2a);
        }
        else
        {
            m1 = w1a.flatten(1).mm(w1b.flatten(1));
            m2 = w2a.flatten(1).mm(w2b.flatten(1));
        }
        return ((m1 * m2).reshape(w.shape), Scale(m, w1b.shape[0]));
    }

    private static (Tensor, double) LoKr(NetworkModuleWeights m, Tensor w)
    {
        long? rank = null;
        var w1 = m["lokr_w1"];
        if (w1 is null)
        {
            var w1b = m.Required("lokr_w1_b");
            rank = w1b.shape[0];
            w1 = m.Required("lokr_w1_a").mm(w1b);
        }
        var w2 = m["lokr_w2"];
        if (w2 is null)
        {
            var w2a = m.Required("lokr_w2_a");
            var w2b = m.Required("lokr_w2_b");
            rank = w2b.shape[0];
            var t2 = m["lokr_t2"];
            w2 = t2 is null ? w2a.mm(w2b) : einsum("i j ..., j r, i p -> p r ...", t2, w2b, w2a);
        }
        // Conv: w1 [a, b] acts on channels only; w2 carries the kernel.
        while (w1.dim() < w2.dim()) w1 = w1.unsqueeze(-1);
        var diff = kron(w1.contiguous(), w2.contiguous()).reshape(w.shape); // libtorch kron views its inputs
        // LyCORIS: alpha / rank only applies when some factor is low-rank; full w1 and w2 are used as they are.
        return (diff, rank is long r ? Scale(m, r) : 1.0);
    }

    private static (Tensor, double) IA3(NetworkModuleWeights m, Tensor w)
    {
        var scaleVector = m.Required("weight");
        bool onInput = m["on_input"] is { } flag && flag.to(ScalarType.Float64).item<double>() != 0;
        // Scale output rows (default) or input columns by w: dW = W * w, so W' = W * (1 + strength * w).
        var shape = Enumerable.Repeat(1L, (int)w.dim()).ToArray();
        shape[onInput ? 1 : 0] = -1;
        return (w * scaleVector.reshape(shape), 1.0);
    }

    private static (Tensor, double) GLoRA(NetworkModuleWeights m, Tensor w)
    {
        var a1 = m.Required("a1.weight");
        var a2 = m.Required("a2.weight");
        var b1 = m.Required("b1.weight");
        var b2 = m.Required("b2.weight");
        // Two layouts exist (old LyCORIS and current); tell them apart by shapes exactly as ComfyUI does.
        long? rank = null;
        bool old = false;
        if (b2.shape[1] == b1.shape[0] && b1.shape[0] == a1.shape[0] && a1.shape[0] == a2.shape[1])
        {
            rank = a1.shape[0];
            old = true;
        }
        if (b2.shape[0] == b1.shape[1] && b1.shape[1] == a1.shape[1] && a1.shape[1] == a2.shape[0])
        {
            if (!(old && a2.shape[0] == w.shape[0] && w.shape[0] == w.shape[1]))
            {
                old = false;
                rank = a2.shape[0];
            }
        }
        if (rank is not long r) throw new ArgumentException("GLoRA factor shapes do not agree on a rank");
        Tensor fa1 = a1.flatten(1), fa2 = a2.flatten(1), fb1 = b1.flatten(1), fb2 = b2.flatten(1);
        Tensor diff;
        if (old)
        {
            diff = fb2.mm(fb1) + w.flatten(1).mm(fa2).mm(fa1);
        }
        else
        {
            var wa = w.dim() > 2
                ? einsum("o i ..., i j -> o j ...", einsum("o i ..., i j -> o j ...", w, fa1), fa2)
                : w.mm(fa1).mm(fa2);
            diff = wa.reshape(w.shape) + fb1.mm(fb2).reshape(w.shape);
        }
        return (diff.reshape(w.shape), Scale(m, r));
    }

    private static double Scale(NetworkModuleWeights m, long rank) => m.Alpha is double alpha ? alpha / rank : 1.0;

    private static bool HasDora(NetworkModuleWeights m) => m[NetworkTensorRoles.DoraScale] is not null || m[NetworkTensorRoles.DoraMagnitude] is not null;

    /// <summary>
    /// DoRA's magnitude shaped to broadcast over <paramref name="combined"/> = W + s·dW, and the norm of W + s·dW it
    /// divides by. kohya/LyCORIS <c>dora_scale</c>: the axis its shape gives (see <see cref="DoraNorm"/>). PEFT
    /// <c>lora_magnitude_vector</c>: one value per output channel, the norm over every other dim (PEFT
    /// <c>linalg.norm(W + s·BA, dim=1)</c> for a linear layer, <c>norm(dim=(1, 2, 3))</c> for a convolution).
    /// </summary>
    private static (Tensor Magnitude, Tensor Norm) DoraFactors(NetworkModuleWeights m, Tensor combined)
    {
        try
        {
            if (m[NetworkTensorRoles.DoraScale] is { } scale)
            {
                var norm = DoraNorm(combined, scale);
                return (scale.reshape(norm.shape), norm);
            }
            var magnitude = m.Required(NetworkTensorRoles.DoraMagnitude);
            long outDim = combined.shape[0];
            if (magnitude.numel() != outDim)
                throw new ArgumentException($"lora_magnitude_vector [{string.Join(", ", magnitude.shape)}] does not hold one value per output channel ({outDim})");
            var outputNorm = OutputAxisNorm(combined);
            return (magnitude.reshape(outputNorm.shape), outputNorm);
        }
        catch (ArgumentException e)
        {
            throw new InvalidOperationException(
                $"network module {m.Name} ({m.Algorithm}) does not fit weight {m.Target.WeightKey} [{string.Join(", ", combined.shape)}]: {FirstLine(e.Message)}", e);
        }
    }

    /// <summary>
    /// The norm of W + dW for kohya/LyCORIS <c>dora_scale</c>: over every dim but the input one when the scale is
    /// [1, in, 1...] (kohya, A1111, ComfyUI), over every dim but the output one when it is [out, 1, ...] (LyCORIS <c>wd_on_out</c>).
    /// </summary>
    private static Tensor DoraNorm(Tensor combined, Tensor dora)
    {
        long outDim = combined.shape[0], inDim = combined.shape[1];
        var ones = Enumerable.Repeat(1L, (int)combined.dim() - 1).ToArray();
        bool onInput = dora.numel() == inDim && (dora.numel() != outDim || dora.dim() < 2 || dora.shape[0] == 1);
        if (onInput)
        {
            return combined.transpose(0, 1).reshape(inDim, -1).norm(1, keepdim: true)
                .reshape([inDim, .. ones]).transpose(0, 1);
        }
        if (dora.numel() == outDim) return OutputAxisNorm(combined);
        throw new ArgumentException($"dora_scale [{string.Join(", ", dora.shape)}] fits neither the input nor the output dimension");
    }

    /// <summary>The norm of each output channel (row) over every other dim, shaped [out, 1, ...].</summary>
    private static Tensor OutputAxisNorm(Tensor combined)
    {
        long outDim = combined.shape[0];
        var ones = Enumerable.Repeat(1L, (int)combined.dim() - 1).ToArray();
        return combined.reshape(outDim, -1).norm(1, keepdim: true).reshape([outDim, .. ones]);
    }

    private static string FirstLine(string message)
    {
        int nl = message.IndexOf('\n');
        return nl < 0 ? message : message[..nl];
    }
}
