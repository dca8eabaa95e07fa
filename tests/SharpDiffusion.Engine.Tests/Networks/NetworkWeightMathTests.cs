using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Networks;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Networks;

/// <summary>Each algorithm's patched weight against its formula evaluated in float64 with plain loops.</summary>
public sealed class NetworkWeightMathTests
{
    internal static NetworkModuleWeights Module(NetworkAlgorithm algorithm, params (string Role, Dense Value)[] tensors) =>
        new("test_module", new NetworkTarget("layer.weight", "layer.bias", ModelPart.Unet), algorithm,
            tensors.ToDictionary(t => t.Role, t => t.Value.ToTensor()));

    private static void Check(NetworkModuleWeights module, Dense weight, double strength, Dense expected)
    {
        using (module)
        using (var w = weight.ToTensor())
        using (var patched = NetworkWeightMath.PatchedWeight(module, w, strength))
        using (var delta = NetworkWeightMath.Delta(module, w, strength))
        {
            NetworkAssert.Close(expected, patched, $"{module.Algorithm} patched");
            NetworkAssert.Close(expected - weight, delta, $"{module.Algorithm} delta");
        }
    }

    [Fact]
    public void Lora_linear_adds_strength_alpha_over_rank_up_times_down()
    {
        var w = Dense.Random(1, 1, 6, 5);
        var up = Dense.Random(2, 0.5, 6, 3);
        var down = Dense.Random(3, 0.5, 3, 5);
        var expected = w + Dense.MatMul(up, down) * (0.7 * 1.5 / 3);
        Check(Module(NetworkAlgorithm.LoRA, ("lora_up.weight", up), ("lora_down.weight", down), ("alpha", Dense.Scalar(1.5))), w, 0.7, expected);
    }

    [Fact]
    public void Lora_without_alpha_uses_alpha_equal_to_rank()
    {
        var w = Dense.Random(4, 1, 6, 5);
        var up = Dense.Random(5, 0.5, 6, 3);
        var down = Dense.Random(6, 0.5, 3, 5);
        Check(Module(NetworkAlgorithm.LoRA, ("lora_up.weight", up), ("lora_down.weight", down)), w, 0.5, w + Dense.MatMul(up, down) * 0.5);
    }

    [Fact]
    public void Locon_3x3_down_and_1x1_up_flatten_like_kohya()
    {
        var w = Dense.Random(7, 1, 4, 3, 3, 3);
        var down = Dense.Random(8, 0.5, 2, 3, 3, 3);
        var up = Dense.Random(9, 0.5, 4, 2, 1, 1);
        var expected = w + Dense.MatMul(up.Reshape(4, 2), down.Reshape(2, 27)).Reshape(4, 3, 3, 3) * (1.0 * 1 / 2);
        Check(Module(NetworkAlgorithm.LoRA, ("lora_up.weight", up), ("lora_down.weight", down), ("alpha", Dense.Scalar(1))), w, 1.0, expected);
    }

    [Fact]
    public void Linear_factors_patch_a_1x1_conv_weight()
    {
        var w = Dense.Random(10, 1, 4, 3, 1, 1);
        var up = Dense.Random(11, 0.5, 4, 2);
        var down = Dense.Random(12, 0.5, 2, 3);
        Check(Module(NetworkAlgorithm.LoRA, ("lora_up.weight", up), ("lora_down.weight", down), ("alpha", Dense.Scalar(4))), w, 0.3,
            w + Dense.MatMul(up, down).Reshape(4, 3, 1, 1) * (0.3 * 4 / 2));
    }

    [Fact]
    public void Locon_tucker_mid_contracts_up_mid_down()
    {
        var w = Dense.Random(13, 1, 4, 3, 3, 3);
        var down = Dense.Random(14, 0.5, 2, 3, 1, 1);
        var mid = Dense.Random(15, 0.5, 2, 2, 3, 3);
        var up = Dense.Random(16, 0.5, 4, 2, 1, 1);
        var diff = Dense.Zeros(4, 3, 3, 3);
        for (int o = 0; o < 4; o++)
            for (int i = 0; i < 3; i++)
                for (int k = 0; k < 9; k++)
                {
                    double s = 0;
                    for (int m = 0; m < 2; m++)
                        for (int n = 0; n < 2; n++)
                            s += up.Data[o * 2 + m] * mid.Data[(m * 2 + n) * 9 + k] * down.Data[n * 3 + i];
                    diff.Data[(o * 3 + i) * 9 + k] = s;
                }
        Check(Module(NetworkAlgorithm.LoRA, ("lora_up.weight", up), ("lora_down.weight", down), ("lora_mid.weight", mid), ("alpha", Dense.Scalar(1))),
            w, 0.8, w + diff * (0.8 * 0.5));
    }

    [Fact]
    public void Loha_is_the_hadamard_product_of_two_low_rank_products()
    {
        var w = Dense.Random(17, 1, 5, 4);
        var w1a = Dense.Random(18, 0.7, 5, 2);
        var w1b = Dense.Random(19, 0.7, 2, 4);
        var w2a = Dense.Random(20, 0.7, 5, 2);
        var w2b = Dense.Random(21, 0.7, 2, 4);
        var diff = Dense.Zip(Dense.MatMul(w1a, w1b), Dense.MatMul(w2a, w2b), (a, b) => a * b);
        Check(Module(NetworkAlgorithm.LoHa, ("hada_w1_a", w1a), ("hada_w1_b", w1b), ("hada_w2_a", w2a), ("hada_w2_b", w2b), ("alpha", Dense.Scalar(1))),
            w, 0.9, w + diff * (0.9 * 1 / 2));
    }

    [Fact]
    public void Loha_tucker_rebuilds_each_factor_through_its_core()
    {
        var w = Dense.Random(22, 1, 4, 3, 3, 3);
        Dense t1 = Dense.Random(23, 0.7, 2, 2, 3, 3), t2 = Dense.Random(24, 0.7, 2, 2, 3, 3);
        Dense w1a = Dense.Random(25, 0.7, 2, 4), w1b = Dense.Random(26, 0.7, 2, 3);
        Dense w2a = Dense.Random(27, 0.7, 2, 4), w2b = Dense.Random(28, 0.7, 2, 3);
        var m1 = Rebuild(t1, w1a, w1b);
        var m2 = Rebuild(t2, w2a, w2b);
        var diff = Dense.Zip(m1, m2, (a, b) => a * b);
        Check(Module(NetworkAlgorithm.LoHa, ("hada_w1_a", w1a), ("hada_w1_b", w1b), ("hada_w2_a", w2a), ("hada_w2_b", w2b),
            ("hada_t1", t1), ("hada_t2", t2), ("alpha", Dense.Scalar(3))), w, 0.5, w + diff * (0.5 * 3 / 2));
    }

    /// <summary>rebuild[p, r, k] = sum_ij t[i, j, k] * b[j, r] * a[i, p] (a: [rank, out], b: [rank, in]).</summary>
    private static Dense Rebuild(Dense t, Dense a, Dense b)
    {
        int rank = (int)t.Shape[0], outDim = (int)a.Shape[1], inDim = (int)b.Shape[1];
        int kernel = t.Count / (rank * rank);
        var r = Dense.Zeros(outDim, inDim, t.Shape[2], t.Shape[3]);
        for (int p = 0; p < outDim; p++)
            for (int q = 0; q < inDim; q++)
                for (int k = 0; k < kernel; k++)
                {
                    double s = 0;
                    for (int i = 0; i < rank; i++)
                        for (int j = 0; j < rank; j++)
                            s += t.Data[(i * rank + j) * kernel + k] * b.Data[j * inDim + q] * a.Data[i * outDim + p];
                    r.Data[(p * inDim + q) * kernel + k] = s;
                }
        return r;
    }

    [Fact]
    public void Lokr_with_full_factors_ignores_alpha()
    {
        var w = Dense.Random(29, 1, 6, 6);
        var w1 = Dense.Random(30, 0.7, 2, 3);
        var w2 = Dense.Random(31, 0.7, 3, 2);
        Check(Module(NetworkAlgorithm.LoKr, ("lokr_w1", w1), ("lokr_w2", w2), ("alpha", Dense.Scalar(4))), w, 0.6, w + Dense.Kron(w1, w2) * 0.6);
    }

    [Fact]
    public void Lokr_with_low_rank_w2_is_scaled_by_alpha_over_rank()
    {
        var w = Dense.Random(32, 1, 6, 8);
        var w1 = Dense.Random(33, 0.7, 2, 2);
        var w2a = Dense.Random(34, 0.7, 3, 2);
        var w2b = Dense.Random(35, 0.7, 2, 4);
        Check(Module(NetworkAlgorithm.LoKr, ("lokr_w1", w1), ("lokr_w2_a", w2a), ("lokr_w2_b", w2b), ("alpha", Dense.Scalar(1))),
            w, 1.0, w + Dense.Kron(w1, Dense.MatMul(w2a, w2b)) * 0.5);
    }

    [Fact]
    public void Lokr_with_low_rank_w1_is_scaled_by_alpha_over_rank()
    {
        var w = Dense.Random(36, 1, 4, 6);
        var w1a = Dense.Random(37, 0.7, 2, 1);
        var w1b = Dense.Random(38, 0.7, 1, 3);
        var w2 = Dense.Random(39, 0.7, 2, 2);
        Check(Module(NetworkAlgorithm.LoKr, ("lokr_w1_a", w1a), ("lokr_w1_b", w1b), ("lokr_w2", w2), ("alpha", Dense.Scalar(2))),
            w, 0.4, w + Dense.Kron(Dense.MatMul(w1a, w1b), w2) * (0.4 * 2));
    }

    [Fact]
    public void Lokr_tucker_w2_carries_the_kernel_and_w1_is_broadcast_over_it()
    {
        var w = Dense.Random(40, 1, 6, 4, 3, 3);
        var w1 = Dense.Random(41, 0.7, 2, 2);
        var t2 = Dense.Random(42, 0.7, 2, 2, 3, 3);
        var w2a = Dense.Random(43, 0.7, 2, 3);
        var w2b = Dense.Random(44, 0.7, 2, 2);
        var w2 = Rebuild(t2, w2a, w2b);
        var diff = Dense.Kron(w1.Reshape(2, 2, 1, 1), w2);
        Check(Module(NetworkAlgorithm.LoKr, ("lokr_w1", w1), ("lokr_w2_a", w2a), ("lokr_w2_b", w2b), ("lokr_t2", t2), ("alpha", Dense.Scalar(1))),
            w, 0.75, w + diff * (0.75 * 0.5));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Ia3_scales_output_rows_or_input_columns(bool onInput)
    {
        var w = Dense.Random(45, 1, 5, 4);
        var scale = Dense.Random(46, 0.5, onInput ? 4 : 5);
        var expected = Dense.Zeros(5, 4);
        for (int o = 0; o < 5; o++)
            for (int i = 0; i < 4; i++)
                expected.Data[o * 4 + i] = w.Data[o * 4 + i] * (1 + 0.8 * scale.Data[onInput ? i : o]);
        var tensors = new List<(string, Dense)> { ("weight", scale) };
        if (onInput) tensors.Add(("on_input", Dense.Scalar(1)));
        Check(Module(NetworkAlgorithm.IA3, [.. tensors]), w, 0.8, expected);
    }

    [Fact]
    public void Ia3_on_a_conv_scales_whole_output_filters()
    {
        var w = Dense.Random(47, 1, 3, 2, 3, 3);
        var scale = Dense.Random(48, 0.5, 3);
        var expected = Dense.Zeros(3, 2, 3, 3);
        for (int x = 0; x < expected.Count; x++) expected.Data[x] = w.Data[x] * (1 + scale.Data[x / 18]);
        Check(Module(NetworkAlgorithm.IA3, ("weight", scale), ("on_input", Dense.Scalar(0))), w, 1.0, expected);
    }

    [Fact]
    public void Full_diff_and_diff_b_are_added_at_strength()
    {
        var w = Dense.Random(49, 1, 4, 3);
        var b = Dense.Random(50, 1, 4);
        var diff = Dense.Random(51, 0.3, 4, 3);
        var diffB = Dense.Random(52, 0.3, 4);
        Check(Module(NetworkAlgorithm.Full, ("diff", diff), ("diff_b", diffB)), w, 0.6, w + diff * 0.6);
        using var m = Module(NetworkAlgorithm.Full, ("diff", diff), ("diff_b", diffB));
        using var bias = b.ToTensor();
        using var patched = NetworkWeightMath.PatchedBias(m, bias, 0.6);
        NetworkAssert.Close(b + diffB * 0.6, patched!, "diff_b");
    }

    [Fact]
    public void Norm_module_adds_w_norm_and_b_norm()
    {
        var w = Dense.Random(53, 1, 8);
        var b = Dense.Random(54, 1, 8);
        var wNorm = Dense.Random(55, 0.3, 8);
        var bNorm = Dense.Random(56, 0.3, 8);
        Check(Module(NetworkAlgorithm.Norm, ("w_norm", wNorm), ("b_norm", bNorm)), w, 1.2, w + wNorm * 1.2);
        using var m = Module(NetworkAlgorithm.Norm, ("w_norm", wNorm), ("b_norm", bNorm));
        using var bias = b.ToTensor();
        using var patched = NetworkWeightMath.PatchedBias(m, bias, 1.2);
        NetworkAssert.Close(b + bNorm * 1.2, patched!, "b_norm");
    }

    [Fact]
    public void Glora_adds_w_a1_a2_plus_b1_b2()
    {
        var w = Dense.Random(57, 1, 5, 4);
        var a1 = Dense.Random(58, 0.5, 4, 2);
        var a2 = Dense.Random(59, 0.5, 2, 4);
        var b1 = Dense.Random(60, 0.5, 5, 2);
        var b2 = Dense.Random(61, 0.5, 2, 4);
        var diff = Dense.MatMul(Dense.MatMul(w, a1), a2) + Dense.MatMul(b1, b2);
        Check(Module(NetworkAlgorithm.GLoRA, ("a1.weight", a1), ("a2.weight", a2), ("b1.weight", b1), ("b2.weight", b2), ("alpha", Dense.Scalar(1))),
            w, 0.7, w + diff * (0.7 * 0.5));
    }

    [Fact]
    public void Glora_on_a_conv_mixes_input_channels_at_every_kernel_position()
    {
        var w = Dense.Random(62, 1, 5, 4, 3, 3);
        var a1 = Dense.Random(63, 0.5, 4, 2, 1, 1);
        var a2 = Dense.Random(64, 0.5, 2, 4, 1, 1);
        var b1 = Dense.Random(65, 0.5, 5, 2, 1, 1);
        var b2 = Dense.Random(66, 0.5, 2, 4, 3, 3);
        var mix = Dense.MatMul(a1.Reshape(4, 2), a2.Reshape(2, 4)); // [in, in]
        var diff = Dense.Zeros(5, 4, 3, 3);
        for (int o = 0; o < 5; o++)
            for (int j = 0; j < 4; j++)
                for (int k = 0; k < 9; k++)
                {
                    double s = 0;
                    for (int i = 0; i < 4; i++) s += w.Data[(o * 4 + i) * 9 + k] * mix.Data[i * 4 + j];
                    diff.Data[(o * 4 + j) * 9 + k] = s;
                }
        diff += Dense.MatMul(b1.Reshape(5, 2), b2.Reshape(2, 36)).Reshape(5, 4, 3, 3);
        Check(Module(NetworkAlgorithm.GLoRA, ("a1.weight", a1), ("a2.weight", a2), ("b1.weight", b1), ("b2.weight", b2), ("alpha", Dense.Scalar(2))),
            w, 1.0, w + diff);
    }

    [Theory]
    [InlineData(true, 1.0)]
    [InlineData(true, 0.6)]
    [InlineData(false, 0.6)]
    public void Dora_rescales_each_column_of_w_plus_dw_to_dora_scale(bool onInput, double strength)
    {
        var w = Dense.Random(67, 1, 5, 4);
        var up = Dense.Random(68, 0.5, 5, 2);
        var down = Dense.Random(69, 0.5, 2, 4);
        var dora = onInput ? Dense.Random(70, 1, 1, 4).Map(Math.Abs) : Dense.Random(70, 1, 5, 1).Map(Math.Abs);
        var combined = w + Dense.MatMul(up, down) * (3.0 / 2);
        var decomposed = Dense.Zeros(5, 4);
        for (int o = 0; o < 5; o++)
            for (int i = 0; i < 4; i++)
            {
                double norm = 0;
                for (int x = 0; x < (onInput ? 5 : 4); x++)
                {
                    double v = onInput ? combined.Data[x * 4 + i] : combined.Data[o * 4 + x];
                    norm += v * v;
                }
                decomposed.Data[o * 4 + i] = combined.Data[o * 4 + i] * dora.Data[onInput ? i : o] / Math.Sqrt(norm);
            }
        Check(Module(NetworkAlgorithm.LoRA, ("lora_up.weight", up), ("lora_down.weight", down), ("alpha", Dense.Scalar(3)), ("dora_scale", dora)),
            w, strength, w + (decomposed - w) * strength);
    }

    [Fact]
    public void Dora_on_a_conv_takes_the_norm_over_output_channels_and_kernel()
    {
        var w = Dense.Random(71, 1, 4, 3, 3, 3);
        var down = Dense.Random(72, 0.5, 2, 3, 3, 3);
        var up = Dense.Random(73, 0.5, 4, 2, 1, 1);
        var dora = Dense.Random(74, 1, 1, 3, 1, 1).Map(Math.Abs);
        var combined = w + Dense.MatMul(up.Reshape(4, 2), down.Reshape(2, 27)).Reshape(4, 3, 3, 3);
        var expected = Dense.Zeros(4, 3, 3, 3);
        for (int i = 0; i < 3; i++)
        {
            double norm = 0;
            for (int o = 0; o < 4; o++)
                for (int k = 0; k < 9; k++) norm += Math.Pow(combined.Data[(o * 3 + i) * 9 + k], 2);
            for (int o = 0; o < 4; o++)
                for (int k = 0; k < 9; k++)
                    expected.Data[(o * 3 + i) * 9 + k] = combined.Data[(o * 3 + i) * 9 + k] * dora.Data[i] / Math.Sqrt(norm);
        }
        Check(Module(NetworkAlgorithm.LoRA, ("lora_up.weight", up), ("lora_down.weight", down), ("dora_scale", dora)), w, 1.0, expected);
    }

    [Fact]
    public void A_module_that_does_not_fit_its_weight_is_an_error_naming_both()
    {
        using var m = Module(NetworkAlgorithm.LoRA, ("lora_up.weight", Dense.Random(75, 1, 6, 2)), ("lora_down.weight", Dense.Random(76, 1, 2, 5)));
        using var w = Dense.Random(77, 1, 7, 5).ToTensor();
        var e = Assert.Throws<InvalidOperationException>(() => NetworkWeightMath.PatchedWeight(m, w, 1.0));
        Assert.Contains("test_module", e.Message, StringComparison.Ordinal);
        Assert.Contains("layer.weight", e.Message, StringComparison.Ordinal);
    }
}
