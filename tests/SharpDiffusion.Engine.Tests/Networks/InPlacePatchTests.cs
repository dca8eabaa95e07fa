using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Networks;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Networks;

/// <summary><see cref="NetworkWeightMath.AddInPlace"/> gives what <see cref="NetworkWeightMath.PatchedWeight"/> gives, without temporaries.</summary>
public sealed class InPlacePatchTests
{
    private static NetworkModuleWeights Lora(Dense up, Dense down, double alpha) =>
        NetworkWeightMathTests.Module(NetworkAlgorithm.LoRA, ("lora_up.weight", up), ("lora_down.weight", down), ("alpha", Dense.Scalar(alpha)));

    [Fact]
    public void A_float32_weight_gets_the_lora_formula_in_place()
    {
        var w = Dense.Random(1, 1, 6, 5);
        Dense up = Dense.Random(2, 0.5, 6, 3), down = Dense.Random(3, 0.5, 3, 5);
        using var module = Lora(up, down, 1.5);
        using var weight = w.ToTensor();
        using var alias = weight.alias();

        NetworkWeightMath.AddInPlace(module, weight, 0.7);

        NetworkAssert.Close(w + Dense.MatMul(up, down) * (0.7 * 1.5 / 3), weight, "in place");
        Assert.Equal(NetworkAssert.Bytes(weight), NetworkAssert.Bytes(alias)); // the same storage, changed where it is
    }

    [Fact]
    public void Linear_factors_on_a_1x1_conv_and_a_row_block_view_change_only_their_elements()
    {
        var w = Dense.Random(4, 1, 9, 3, 1, 1);
        Dense up = Dense.Random(5, 0.5, 3, 2), down = Dense.Random(6, 0.5, 2, 3);
        using var module = Lora(up, down, 2);
        using var weight = w.ToTensor();
        var before = NetworkAssert.Bytes(weight);
        using var middle = weight.narrow(0, 3, 3); // kohya's k block of a stacked in_proj

        NetworkWeightMath.AddInPlace(module, middle, -0.5);

        var expected = new Dense([9, 3, 1, 1], (double[])w.Data.Clone());
        var delta = Dense.MatMul(up, down);
        for (int i = 0; i < 9; i++) expected.Data[9 + i] += -0.5 * delta.Data[i];
        NetworkAssert.Close(expected, weight, "k rows");
        var after = NetworkAssert.Bytes(weight);
        Assert.Equal(before[..36], after[..36]);
        Assert.Equal(before[72..], after[72..]);
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    public void A_reduced_precision_weight_is_the_float32_sum_rounded_once(ScalarType dtype)
    {
        var w = Dense.Random(7, 1, 16, 12);
        Dense up = Dense.Random(8, 0.5, 16, 4), down = Dense.Random(9, 0.5, 4, 12);
        using var module = Lora(up, down, 4);
        using var weight = w.ToTensor().to(dtype);
        using var reference = NetworkWeightMath.PatchedWeight(module, weight, 0.9);
        using var expected = reference.to(dtype);
        using var scratch = new Float32Scratch();

        NetworkWeightMath.AddInPlace(module, weight, 0.9, scratch);

        // The float32 sums may differ in the last float32 bit; rounded to 8 or 11 mantissa bits they agree except at a tie.
        using var differ = weight.to(ScalarType.Float32).sub(expected.to(ScalarType.Float32)).abs();
        using var ulp = expected.to(ScalarType.Float32).abs().mul(dtype == ScalarType.BFloat16 ? 1.0 / 128 : 1.0 / 1024);
        Assert.True(differ.le(ulp).all().item<bool>());
        Assert.True(weight.equal(expected).to(ScalarType.Float32).mean().item<float>() > 0.95);
    }

    [Fact]
    public void Other_algorithms_and_factors_that_do_not_fit_take_the_general_path()
    {
        var w = Dense.Random(10, 1, 4, 4);
        using var loha = NetworkWeightMathTests.Module(NetworkAlgorithm.LoHa, ("hada_w1_a", Dense.Random(11, 0.5, 4, 2)), ("hada_w1_b", Dense.Random(12, 0.5, 2, 4)),
            ("hada_w2_a", Dense.Random(13, 0.5, 4, 2)), ("hada_w2_b", Dense.Random(14, 0.5, 2, 4)));
        using var weight = w.ToTensor();
        using var expected = NetworkWeightMath.PatchedWeight(loha, weight, 0.8);
        NetworkWeightMath.AddInPlace(loha, weight, 0.8);
        Assert.Equal(NetworkAssert.Bytes(expected), NetworkAssert.Bytes(weight));

        // A 2x8 product has the weight's element count but not its rows: the general path reshapes it, as before.
        using var reshaped = Lora(Dense.Random(15, 0.5, 2, 1), Dense.Random(16, 0.5, 1, 8), 1);
        using var reshapedExpected = NetworkWeightMath.PatchedWeight(reshaped, weight, 1.0);
        NetworkWeightMath.AddInPlace(reshaped, weight, 1.0);
        Assert.Equal(NetworkAssert.Bytes(reshapedExpected), NetworkAssert.Bytes(weight));

        // A 2x6 product fits nowhere: the general path's error, and the weight is untouched.
        using var wide = Lora(Dense.Random(17, 0.5, 2, 1), Dense.Random(18, 0.5, 1, 6), 1);
        var untouched = NetworkAssert.Bytes(weight);
        var e = Assert.Throws<InvalidOperationException>(() => NetworkWeightMath.AddInPlace(wide, weight, 1.0));
        Assert.Contains("does not fit", e.Message, StringComparison.Ordinal);
        Assert.Equal(untouched, NetworkAssert.Bytes(weight));
    }

    [Fact]
    public void The_backup_pool_reuses_buffers_between_jobs_and_frees_what_a_job_did_not_use()
    {
        const string a = "model.diffusion_model.a.weight", b = "model.diffusion_model.b.weight";
        using var wa = Dense.Random(19, 1, 8, 4).ToTensor();
        using var wb = Dense.Random(20, 1, 8, 4).ToTensor();
        var weights = new Dictionary<string, Tensor> { [a] = wa, [b] = wb };
        var originalA = NetworkAssert.Bytes(wa);
        using var pool = new WeightBackupPool();
        using var module = new NetworkModuleWeights("m", new NetworkTarget(a, null, ModelPart.Unet), NetworkAlgorithm.Full,
            new Dictionary<string, Tensor> { ["diff"] = ones(8, 4) });

        Tensor first;
        using (var patcher = new NetworkPatcher(weights, pool))
        {
            patcher.Apply(module, 1.0);
            first = pool.Save("probe", wb); // a second key, handed back below
            pool.Return("probe", first);
        }
        Assert.Equal(originalA, NetworkAssert.Bytes(wa));
        Assert.Equal(2 * 8 * 4 * 4, pool.SpareBytes);
        pool.ReleaseUnused(); // both were used since the pool was made: kept
        Assert.Equal(2 * 8 * 4 * 4, pool.SpareBytes);

        using (var patcher = new NetworkPatcher(weights, pool))
            patcher.Apply(module, 2.0); // reuses a's buffer
        pool.ReleaseUnused(); // "probe" was not used by this job: freed
        Assert.Equal(8 * 4 * 4, pool.SpareBytes);
        Assert.Equal(originalA, NetworkAssert.Bytes(wa));
        pool.ReleaseUnused();
        Assert.Equal(0, pool.SpareBytes);
    }
}
