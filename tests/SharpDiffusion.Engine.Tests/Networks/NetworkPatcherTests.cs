using System.Globalization;
using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Networks;

public sealed class NetworkPatcherTests
{
    private const string TeKey = "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight";
    private const string UnetKey = "model.diffusion_model.input_blocks.1.1.proj_in.weight";

    private static NetworkModuleWeights Lora(string name, NetworkTarget target, Dense up, Dense down, double alpha) =>
        new(name, target, NetworkAlgorithm.LoRA, new Dictionary<string, Tensor>
        {
            ["lora_up.weight"] = up.ToTensor(), ["lora_down.weight"] = down.ToTensor(), ["alpha"] = Dense.Scalar(alpha).ToTensor(),
        });

    [Fact]
    public void A1111_split_gives_text_encoder_and_unet_modules_their_own_strength_and_restore_is_bitwise()
    {
        var te = Dense.Random(1, 1, 6, 6);
        var unet = Dense.Random(2, 1, 4, 4, 1, 1);
        using var teWeight = te.ToTensor();
        using var unetWeight = unet.ToTensor().to(ScalarType.Float16); // the U-Net in half precision, as loaded from an fp16 file
        var teBytes = NetworkAssert.Bytes(teWeight);
        var unetBytes = NetworkAssert.Bytes(unetWeight);
        var weights = new Dictionary<string, Tensor> { [TeKey] = teWeight, [UnetKey] = unetWeight };
        Dense teUp = Dense.Random(3, 0.5, 6, 2), teDown = Dense.Random(4, 0.5, 2, 6);
        Dense unetUp = Dense.Random(5, 0.5, 4, 2, 1, 1), unetDown = Dense.Random(6, 0.5, 2, 4, 1, 1);
        var network = new[]
        {
            Lora("lora_te_text_model_encoder_layers_0_self_attn_q_proj", new NetworkTarget(TeKey, null, ModelPart.TextEncoder), teUp, teDown, 1),
            Lora("lora_unet_down_blocks_0_attentions_0_proj_in", new NetworkTarget(UnetKey, null, ModelPart.Unet), unetUp, unetDown, 1),
        };
        var tag = A1111NetworkTag.Parse("<lora:test:0.25:0.8>");

        using (var patcher = new NetworkPatcher(weights))
        {
            patcher.Apply(network, tag.TextEncoderStrength, tag.UnetStrength);
            Assert.Equal(2, patcher.PatchedTensorCount);

            NetworkAssert.Close(te + Dense.MatMul(teUp, teDown) * (0.25 * 0.5), teWeight, "text encoder at te strength");
            // fp16 storage: compare the U-Net weight with the reference rounded to half precision.
            var expectedUnet = (unet.Map(v => (double)(Half)v) + Dense.MatMul(unetUp.Reshape(4, 2), unetDown.Reshape(2, 4)).Reshape(4, 4, 1, 1) * (0.8 * 0.5))
                .Map(v => (double)(Half)v);
            NetworkAssert.Close(expectedUnet, unetWeight, "U-Net at unet strength");

            patcher.Restore();
            Assert.Equal(0, patcher.PatchedTensorCount);
        }
        Assert.Equal(teBytes, NetworkAssert.Bytes(teWeight));
        Assert.Equal(unetBytes, NetworkAssert.Bytes(unetWeight));
        foreach (var m in network) m.Dispose();
    }

    [Fact]
    public void Modules_on_one_weight_accumulate_and_restore_returns_the_first_original()
    {
        var w = Dense.Random(7, 1, 5, 4);
        using var weight = w.ToTensor();
        var original = NetworkAssert.Bytes(weight);
        var target = new NetworkTarget(UnetKey, null, ModelPart.Unet);
        Dense up1 = Dense.Random(8, 0.5, 5, 2), down1 = Dense.Random(9, 0.5, 2, 4);
        Dense up2 = Dense.Random(10, 0.5, 5, 3), down2 = Dense.Random(11, 0.5, 3, 4);
        using var first = Lora("a", target, up1, down1, 2);
        using var second = Lora("b", target, up2, down2, 1.5);
        using var patcher = new NetworkPatcher(new Dictionary<string, Tensor> { [UnetKey] = weight });

        patcher.Apply([(first, 0.5), (second, -1.0)]);

        NetworkAssert.Close(w + Dense.MatMul(up1, down1) * (0.5 * 1.0) + Dense.MatMul(up2, down2) * (-1.0 * 0.5), weight, "two modules");
        Assert.Equal(1, patcher.PatchedTensorCount);
        patcher.Restore();
        Assert.Equal(original, NetworkAssert.Bytes(weight));
    }

    [Fact]
    public void A_row_block_target_changes_only_its_rows_and_the_bias_block()
    {
        const string inProj = "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight";
        const string inBias = "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_bias";
        var w = Dense.Random(12, 1, 9, 3);
        var b = Dense.Random(13, 1, 9);
        using var weight = w.ToTensor();
        using var bias = b.ToTensor();
        var original = (NetworkAssert.Bytes(weight), NetworkAssert.Bytes(bias));
        var diff = Dense.Random(14, 0.5, 3, 3);
        var diffB = Dense.Random(15, 0.5, 3);
        using var module = new NetworkModuleWeights("lora_te2_text_model_encoder_layers_0_self_attn_k_proj",
            new NetworkTarget(inProj, inBias, ModelPart.TextEncoder2, 1, 3), NetworkAlgorithm.Full,
            new Dictionary<string, Tensor> { ["diff"] = diff.ToTensor(), ["diff_b"] = diffB.ToTensor() });
        using var patcher = new NetworkPatcher(new Dictionary<string, Tensor> { [inProj] = weight, [inBias] = bias });

        patcher.Apply(module, 2.0);

        var expected = new Dense([9, 3], (double[])w.Data.Clone());
        for (int x = 0; x < 9; x++) expected.Data[9 + x] += 2.0 * diff.Data[x];
        var expectedBias = new Dense([9], (double[])b.Data.Clone());
        for (int x = 0; x < 3; x++) expectedBias.Data[3 + x] += 2.0 * diffB.Data[x];
        NetworkAssert.Close(expected, weight, "k rows of in_proj_weight");
        NetworkAssert.Close(expectedBias, bias, "k part of in_proj_bias");
        // q and v rows untouched, bit for bit (3 rows x 3 floats x 4 bytes each).
        var patchedBytes = NetworkAssert.Bytes(weight);
        Assert.Equal(original.Item1[..36], patchedBytes[..36]);
        Assert.Equal(original.Item1[72..], patchedBytes[72..]);
        Assert.Equal(2, patcher.PatchedTensorCount);
        patcher.Restore();
        Assert.Equal(original.Item1, NetworkAssert.Bytes(weight));
        Assert.Equal(original.Item2, NetworkAssert.Bytes(bias));
    }

    [Fact]
    public void A_target_the_model_lacks_is_an_error_naming_module_and_key()
    {
        using var module = Lora("lora_unet_x", new NetworkTarget("model.diffusion_model.missing.weight", null, ModelPart.Unet),
            Dense.Random(16, 1, 2, 1), Dense.Random(17, 1, 1, 2), 1);
        using var patcher = new NetworkPatcher(new Dictionary<string, Tensor>());
        var e = Assert.Throws<InvalidOperationException>(() => patcher.Apply(module, 1.0));
        Assert.Contains("lora_unet_x", e.Message, StringComparison.Ordinal);
        Assert.Contains("model.diffusion_model.missing.weight", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_kohya_sd15_lora_file_loads_resolves_and_fits_every_target_shape()
    {
        var model = Inventory("sd15_single_file.tsv");
        var lora = Inventory("sd15_kohya_lora_rank8.tsv");
        using var dir = new TempDir();
        string path = dir.File("lora.safetensors");
        int seed = 100;
        TestSafetensors.Write(path, lora.Select(e => (e.Name, e.DType, e.Shape,
            e.Shape.Length == 0 ? new[] { 4f } : Dense.Random(seed++, 0.1, e.Shape).ToFloats())));

        using var file = SafetensorsFile.Open(path);
        var resolution = NetworkKeyResolver.ForModel(model.Select(e => e.Name)).Resolve(file.Tensors.Select(t => t.Name));
        Assert.Empty(resolution.Unused);
        var modules = NetworkModuleWeights.LoadAll(file, resolution);
        try
        {
            Assert.Equal(264, modules.Count);
            var shapes = model.ToDictionary(e => e.Name, e => e.Shape);
            foreach (var m in modules.Where((_, i) => i % 11 == 0))
            {
                Assert.Equal(4.0, m.Alpha);
                Assert.Equal(ScalarType.Float32, m.Required("lora_up.weight").dtype);
                using var zero = zeros(shapes[m.Target.WeightKey]);
                using var delta = NetworkWeightMath.Delta(m, zero, 1.0);
                Assert.Equal(shapes[m.Target.WeightKey], delta.shape);
                // Spot-check one element against up[o,:] . down[:, i] * alpha / rank.
                using var up = m.Required("lora_up.weight").flatten(1);
                using var down = m.Required("lora_down.weight").flatten(1);
                double expected = 0;
                for (int r = 0; r < 8; r++) expected += up[1, r].item<float>() * (double)down[r, 2].item<float>();
                using var flat = delta.flatten(1);
                Assert.Equal(expected * 0.5, flat[1, 2].item<float>(), 1e-6);
            }
        }
        finally
        {
            foreach (var m in modules) m.Dispose();
        }
    }

    private static List<(string Name, string DType, long[] Shape)> Inventory(string fileName) =>
        [.. File.ReadLines(TestPaths.ReferenceFile(fileName)).Where(l => l.Length > 0).Select(l =>
        {
            var c = l.Split('\t');
            var dims = c[2].Trim('[', ']');
            long[] shape = dims.Length == 0 ? [] : [.. dims.Split(',').Select(d => long.Parse(d, CultureInfo.InvariantCulture))];
            return (c[0], c[1], shape);
        })];
}
