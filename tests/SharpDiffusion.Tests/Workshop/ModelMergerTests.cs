using System.Security.Cryptography;
using System.Text.Json;
using SharpDiffusion.Formats;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Tests.Workshop;

public sealed class ModelMergerTests
{
    private static MergeResult Merge(string a, string b, string output, double multiplier, MergeMode mode = MergeMode.WeightedSum,
        string? c = null, TensorDType? precision = null, BlockWeights? blocks = null, string? vae = null) =>
        ModelMerger.Merge(new MergeOptions
        {
            ModelA = a, ModelB = b, ModelC = c, Mode = mode, Multiplier = multiplier, Precision = precision,
            BlockWeights = blocks, Vae = vae, Output = output,
        });

    private static float WeightedSum(float a, float b, double m) => (float)(1 - m) * a + (float)m * b;

    private static float AddDifference(float a, float b, float c, double m) => a + (float)m * (b - c);

    [Fact]
    public void Weighted_sum_in_fp32_is_exact_per_element_and_leaves_unmerged_keys_as_A()
    {
        using var dir = new TempDir();
        var a = CheckpointFixture.Sd1();
        var b = a.Perturbed(1);
        var result = Merge(a.WriteSafetensors(dir.File("a.safetensors")), b.WriteSafetensors(dir.File("b.safetensors")), dir.File("out.safetensors"), 0.3);

        var merged = CheckpointFixture.Load(dir.File("out.safetensors"));
        Assert.Equal(a.Tensors.Select(t => t.Name), merged.Tensors.Select(t => t.Name));
        int checkedMerged = 0;
        foreach (var ta in a.Tensors)
        {
            var tm = merged[ta.Name];
            Assert.Equal(ta.DType, tm.DType);
            Assert.Equal(ta.Shape, tm.Shape);
            if (CheckpointKeys.IsMergeable(ta.Name) && ta.DType.IsFloatingPoint())
            {
                var fa = ta.Floats;
                var fb = b[ta.Name].Floats;
                var expected = fa.Select((x, i) => WeightedSum(x, fb[i], 0.3)).ToArray();
                Assert.Equal(expected, tm.Floats);
                checkedMerged++;
            }
            else
            {
                Assert.Equal(ta.Data, tm.Data);
            }
        }
        // DDPM buffers ("betas", no "model" in the name) and the CLIP position ids are A's even though B's differ.
        Assert.Equal(a["betas"].Data, merged["betas"].Data);
        Assert.NotEqual(a["betas"].Data, b["betas"].Data);
        Assert.Equal(a["cond_stage_model.transformer.text_model.embeddings.position_ids"].Data,
            merged["cond_stage_model.transformer.text_model.embeddings.position_ids"].Data);
        Assert.Equal(checkedMerged, result.Merged);
        Assert.True(result.Merged > 300);
        Assert.Equal(a.Tensors.Count - result.Merged, result.KeptFromA);
    }

    [Fact]
    public void Add_difference_is_A_plus_M_times_B_minus_C()
    {
        using var dir = new TempDir();
        var a = CheckpointFixture.Sd1().Perturbed(3);
        var b = CheckpointFixture.Sd1().Perturbed(1);
        var c = CheckpointFixture.Sd1().Perturbed(2);
        // A key C lacks: A1111 sets B - C to zero, so the result is A.
        const string missingInC = "model.diffusion_model.out.2.bias";
        var result = Merge(a.WriteSafetensors(dir.File("a.safetensors")), b.WriteSafetensors(dir.File("b.safetensors")),
            dir.File("out.safetensors"), 0.75, MergeMode.AddDifference,
            c.Where(t => t.Name != missingInC).WriteSafetensors(dir.File("c.safetensors")));

        var merged = CheckpointFixture.Load(dir.File("out.safetensors"));
        foreach (var name in new[] { "model.diffusion_model.input_blocks.0.0.weight", "first_stage_model.decoder.conv_out.weight",
                     "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight" })
        {
            var fa = a[name].Floats;
            var fb = b[name].Floats;
            var fc = c[name].Floats;
            Assert.Equal(fa.Select((x, i) => AddDifference(x, fb[i], fc[i], 0.75)).ToArray(), merged[name].Floats);
        }
        Assert.Equal(a[missingInC].Data, merged[missingInC].Data);
        Assert.Equal(a.Tensors.Count(t => CheckpointKeys.IsMergeable(t.Name) && t.DType.IsFloatingPoint()) - 1, result.Merged);
    }

    [Theory]
    [InlineData(TensorDType.F16)]
    [InlineData(TensorDType.BF16)]
    public void Precision_stores_the_float32_result_rounded_once(TensorDType precision)
    {
        using var dir = new TempDir();
        var a = CheckpointFixture.Sd1();
        var b = a.Perturbed(5).As(TensorDType.F16);
        Merge(a.WriteSafetensors(dir.File("a.safetensors")), b.WriteSafetensors(dir.File("b.safetensors")), dir.File("out.safetensors"), 0.4,
            precision: precision);

        var merged = CheckpointFixture.Load(dir.File("out.safetensors"));
        foreach (var t in merged.Tensors)
            Assert.Equal(a[t.Name].DType.IsFloatingPoint() ? precision : a[t.Name].DType, t.DType);
        const string name = "model.diffusion_model.middle_block.1.proj_in.weight";
        var fa = a[name].Floats;
        var fb = b[name].Floats;
        var expected = DTypeConversion.FromSingle(fa.Select((x, i) => WeightedSum(x, fb[i], 0.4)).ToArray(), precision);
        Assert.Equal(expected, merged[name].Data);
        // Unmerged float tensors are converted too; the int64 position ids are not.
        Assert.Equal(DTypeConversion.FromSingle(a["betas"].Floats, precision), merged["betas"].Data);
        Assert.Equal(TensorDType.I64, merged["cond_stage_model.transformer.text_model.embeddings.position_ids"].DType);
    }

    [Fact]
    public void Default_precision_is_As_type_per_tensor()
    {
        using var dir = new TempDir();
        var a = CheckpointFixture.Sd1().As(TensorDType.F16);
        var b = CheckpointFixture.Sd1().Perturbed(4);
        Merge(a.WriteSafetensors(dir.File("a.safetensors")), b.WriteSafetensors(dir.File("b.safetensors")), dir.File("out.safetensors"), 0.5);

        var merged = CheckpointFixture.Load(dir.File("out.safetensors"));
        const string name = "first_stage_model.encoder.conv_in.weight";
        Assert.Equal(TensorDType.F16, merged[name].DType);
        var fa = a[name].Floats;
        var fb = b[name].Floats;
        Assert.Equal(DTypeConversion.FromSingle(fa.Select((x, i) => WeightedSum(x, fb[i], 0.5)).ToArray(), TensorDType.F16), merged[name].Data);
    }

    [Fact]
    public void Block_weights_apply_per_unet_block_and_BASE_elsewhere()
    {
        using var dir = new TempDir();
        var a = CheckpointFixture.Sd1();
        var b = a.Perturbed(9);
        var weights = new BlockWeights(Enumerable.Range(0, 26).Select(i => 0.02 + i * 0.037).ToArray());
        Merge(a.WriteSafetensors(dir.File("a.safetensors")), b.WriteSafetensors(dir.File("b.safetensors")), dir.File("out.safetensors"), 0.9,
            blocks: weights);

        var merged = CheckpointFixture.Load(dir.File("out.safetensors"));
        var blocksSeen = new HashSet<string>();
        foreach (var ta in a.Tensors.Where(t => CheckpointKeys.IsMergeable(t.Name) && t.DType.IsFloatingPoint()))
        {
            string block = BlockWeights.BlockOf(ta.Name);
            blocksSeen.Add(block);
            double m = weights[block];
            var fa = ta.Floats;
            var fb = b[ta.Name].Floats;
            Assert.Equal(fa.Select((x, i) => WeightedSum(x, fb[i], m)).ToArray(), merged[ta.Name].Floats);
        }
        // The tiny U-Net has input blocks 0-3, a middle block, output blocks 0-5 (time_embed -> IN00, out -> OUT11).
        Assert.Contains("BASE", blocksSeen);
        Assert.Contains("IN00", blocksSeen);
        Assert.Contains("M00", blocksSeen);
        Assert.Contains("OUT11", blocksSeen);
        Assert.True(blocksSeen.Count >= 8, string.Join(",", blocksSeen));
    }

    [Fact]
    public void Keys_only_A_has_are_kept_and_keys_only_B_has_are_not_added()
    {
        using var dir = new TempDir();
        const string dropped = "model.diffusion_model.input_blocks.1.0.emb_layers.1.weight";
        var a = CheckpointFixture.Sd1().With(CheckpointFixture.Float("model.extra_a.weight", [3, 2], 1f));
        var b = CheckpointFixture.Sd1().Perturbed(1).Where(t => t.Name != dropped).With(CheckpointFixture.Float("model.extra_b.weight", [2], 5f));
        Merge(a.WriteSafetensors(dir.File("a.safetensors")), b.WriteSafetensors(dir.File("b.safetensors")), dir.File("out.safetensors"), 0.5);

        var merged = CheckpointFixture.Load(dir.File("out.safetensors"));
        Assert.Equal(a.Tensors.Select(t => t.Name), merged.Tensors.Select(t => t.Name));
        Assert.Equal(a[dropped].Data, merged[dropped].Data);
        Assert.Equal(a["model.extra_a.weight"].Data, merged["model.extra_a.weight"].Data);
    }

    [Fact]
    public void Old_text_encoder_names_line_up_as_A1111_renames_them()
    {
        using var dir = new TempDir();
        var a = CheckpointFixture.Sd1();
        var b = a.Perturbed(1);
        var oldNamesB = b.Map(t => t with { Name = t.Name.Replace("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer.", StringComparison.Ordinal) });
        Merge(a.WriteSafetensors(dir.File("a.safetensors")), oldNamesB.WriteSafetensors(dir.File("b.safetensors")), dir.File("out.safetensors"), 0.5);

        var merged = CheckpointFixture.Load(dir.File("out.safetensors"));
        const string name = "cond_stage_model.transformer.text_model.final_layer_norm.weight";
        var fa = a[name].Floats;
        var fb = b[name].Floats;
        Assert.Equal(fa.Select((x, i) => WeightedSum(x, fb[i], 0.5)).ToArray(), merged[name].Floats);
    }

    [Fact]
    public void SD1_and_SDXL_are_refused_before_any_output_is_written()
    {
        using var dir = new TempDir();
        string a = CheckpointFixture.Sd1().WriteSafetensors(dir.File("a.safetensors"));
        var e = Assert.Throws<WorkshopException>(() => Merge(a, TestPaths.GoldenFile("tiny_sdxl.safetensors"), dir.File("out.safetensors"), 0.5));
        Assert.Contains("SD1", e.Message);
        Assert.Contains("SDXL", e.Message);
        Assert.Equal(["a.safetensors"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void A_shape_mismatch_on_a_shared_key_names_the_key_and_writes_nothing()
    {
        using var dir = new TempDir();
        const string name = "model.diffusion_model.input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight";
        var a = CheckpointFixture.Sd1();
        var b = a.Perturbed(1).Map(t => t.Name == name ? CheckpointFixture.Float(name, [t.Shape[0], t.Shape[1] * 2], 0f) : t);
        var e = Assert.Throws<WorkshopException>(() =>
            Merge(a.WriteSafetensors(dir.File("a.safetensors")), b.WriteSafetensors(dir.File("b.safetensors")), dir.File("out.safetensors"), 0.5));
        Assert.Contains(name, e.Message);
        Assert.False(File.Exists(dir.File("out.safetensors")));
        Assert.Equal(2, Directory.GetFiles(dir.Path).Length);
    }

    [Fact]
    public void Inpainting_A_merges_only_the_four_channels_B_has()
    {
        using var dir = new TempDir();
        const string convIn = "model.diffusion_model.input_blocks.0.0.weight";
        var normal = CheckpointFixture.Sd1();
        long outCh = normal[convIn].Shape[0];
        var a = normal.Map(t => t.Name == convIn ? CheckpointFixture.Float(convIn, [outCh, 9, 3, 3], -0.5f, 0.0007f) : t);
        var b = normal.Perturbed(1);
        var result = Merge(a.WriteSafetensors(dir.File("a.safetensors")), b.WriteSafetensors(dir.File("b.safetensors")), dir.File("out.safetensors"), 0.25);

        Assert.True(result.IsInpainting);
        var merged = CheckpointFixture.Load(dir.File("out.safetensors"));
        var fa = a[convIn].Floats;
        var fb = b[convIn].Floats;
        var fm = merged[convIn].Floats;
        Assert.Equal([outCh, 9, 3, 3], merged[convIn].Shape);
        for (int o = 0; o < outCh; o++)
            for (int ch = 0; ch < 9; ch++)
                for (int r = 0; r < 9; r++)
                {
                    int i = (o * 9 + ch) * 9 + r;
                    float expected = ch < 4 ? WeightedSum(fa[i], fb[(o * 4 + ch) * 9 + r], 0.25) : fa[i];
                    Assert.Equal(expected, fm[i]);
                }
        using var recipe = JsonDocument.Parse(result.Metadata["sd_merge_recipe"]);
        Assert.True(recipe.RootElement.GetProperty("is_inpainting").GetBoolean());

        // The other way round A1111 refuses: A must be the inpainting model.
        var e = Assert.Throws<WorkshopException>(() => Merge(dir.File("b.safetensors"), dir.File("a.safetensors"), dir.File("out2.safetensors"), 0.25));
        Assert.Contains("A must be the inpainting model", e.Message);
        Assert.False(File.Exists(dir.File("out2.safetensors")));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Baked_VAE_replaces_exactly_the_first_stage_model_keys(bool torchFormat)
    {
        using var dir = new TempDir();
        var a = CheckpointFixture.Sd1();
        var b = a.Perturbed(1);
        var vaeSource = a.Perturbed(7).Where(t => t.Name.StartsWith("first_stage_model.", StringComparison.Ordinal));
        string vaePath;
        if (torchFormat)
        {
            // A .vae.pt: bare encoder./decoder. keys under state_dict, with loss and EMA entries to ignore.
            var bare = vaeSource.Map(t => t with { Name = t.Name["first_stage_model.".Length..] })
                .With(CheckpointFixture.Float("loss.logvar", [], 0f), CheckpointFixture.Float("model_ema.decay", [], 0.9999f));
            vaePath = bare.WriteCkpt(dir.File("x.vae.pt"));
        }
        else
        {
            vaePath = vaeSource.WriteSafetensors(dir.File("x.vae.safetensors"));
        }
        var result = Merge(a.WriteSafetensors(dir.File("a.safetensors")), b.WriteSafetensors(dir.File("b.safetensors")), dir.File("out.safetensors"), 0.5,
            vae: vaePath);

        var merged = CheckpointFixture.Load(dir.File("out.safetensors"));
        int vaeKeys = 0;
        foreach (var t in merged.Tensors)
        {
            if (t.Name.StartsWith("first_stage_model.", StringComparison.Ordinal))
            {
                Assert.Equal(vaeSource[t.Name].Data, t.Data);
                vaeKeys++;
            }
            else if (CheckpointKeys.IsMergeable(t.Name) && t.DType.IsFloatingPoint())
            {
                var fa = a[t.Name].Floats;
                var fb = b[t.Name].Floats;
                Assert.Equal(fa.Select((x, i) => WeightedSum(x, fb[i], 0.5)).ToArray(), t.Floats);
            }
        }
        Assert.Equal(vaeSource.Tensors.Count, vaeKeys);
        Assert.Equal(vaeKeys, result.VaeReplaced);
        Assert.DoesNotContain(merged.Tensors, t => t.Name.Contains("loss", StringComparison.Ordinal) || t.Name.Contains("model_ema", StringComparison.Ordinal));
        using var recipe = JsonDocument.Parse(result.Metadata["sd_merge_recipe"]);
        Assert.Equal(Path.GetFileName(vaePath), recipe.RootElement.GetProperty("bake_in_vae").GetString());
    }

    [Fact]
    public void A_VAE_without_matching_keys_is_refused()
    {
        using var dir = new TempDir();
        var a = CheckpointFixture.Sd1();
        string vae = new CheckpointFixture([CheckpointFixture.Float("decoder.up_blocks.0.resnets.0.conv1.weight", [2], 0f)]).WriteSafetensors(dir.File("diffusers_vae.safetensors"));
        var e = Assert.Throws<WorkshopException>(() =>
            Merge(a.WriteSafetensors(dir.File("a.safetensors")), a.Perturbed(1).WriteSafetensors(dir.File("b.safetensors")), dir.File("out.safetensors"), 0.5, vae: vae));
        Assert.Contains("first_stage_model", e.Message);
        Assert.False(File.Exists(dir.File("out.safetensors")));
    }

    [Fact]
    public void Metadata_records_the_A1111_merge_recipe_and_models()
    {
        using var dir = new TempDir();
        var a = CheckpointFixture.Sd1();
        a.Metadata["description"] = "model A";
        string pathA = a.WriteSafetensors(dir.File("alpha.safetensors"));
        string pathB = a.Perturbed(1).WriteSafetensors(dir.File("beta.safetensors"));
        string pathC = a.Perturbed(2).WriteCkpt(dir.File("gamma.ckpt"));
        var weights = new BlockWeights(Enumerable.Repeat(0.5, 26).ToArray());
        Merge(pathA, pathB, dir.File("out.safetensors"), 0.35, MergeMode.AddDifference, pathC, TensorDType.F16, weights);

        using var file = ModelFileReader.Open(dir.File("out.safetensors"));
        var md = file.Metadata;
        Assert.Equal("pt", md["format"]);
        Assert.Equal("model A", md["description"]);
        string Sha(string p) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(p)));
        using var recipe = JsonDocument.Parse(md["sd_merge_recipe"]);
        var r = recipe.RootElement;
        Assert.Equal(Sha(pathA), r.GetProperty("primary_model_hash").GetString());
        Assert.Equal(Sha(pathB), r.GetProperty("secondary_model_hash").GetString());
        Assert.Equal(Sha(pathC), r.GetProperty("tertiary_model_hash").GetString());
        Assert.Equal("Add difference", r.GetProperty("interp_method").GetString());
        Assert.Equal(0.35, r.GetProperty("multiplier").GetDouble());
        Assert.True(r.GetProperty("save_as_half").GetBoolean());
        Assert.Equal("fp16", r.GetProperty("precision").GetString());
        Assert.Equal(26, r.GetProperty("block_weights").GetArrayLength());
        Assert.False(r.GetProperty("is_inpainting").GetBoolean());
        using var models = JsonDocument.Parse(md["sd_merge_models"]);
        Assert.Equal("alpha.safetensors", models.RootElement.GetProperty(Sha(pathA)).GetProperty("name").GetString());
        Assert.Equal("gamma.ckpt", models.RootElement.GetProperty(Sha(pathC)).GetProperty("name").GetString());
        Assert.Equal(8, models.RootElement.GetProperty(Sha(pathB)).GetProperty("legacy_hash").GetString()!.Length);

        // Merging the merge carries the earlier recipe along, as A1111 does.
        string second = dir.File("second.safetensors");
        Merge(dir.File("out.safetensors"), pathB, second, 0.5);
        using var again = ModelFileReader.Open(second);
        using var models2 = JsonDocument.Parse(again.Metadata["sd_merge_models"]);
        Assert.Equal("Add difference", models2.RootElement.GetProperty(Sha(dir.File("out.safetensors"))).GetProperty("sd_merge_recipe").GetProperty("interp_method").GetString());
        Assert.True(models2.RootElement.TryGetProperty(Sha(pathC), out _));
    }

    [Fact]
    public void Inputs_are_never_modified_and_an_input_is_never_the_output()
    {
        using var dir = new TempDir();
        var a = CheckpointFixture.Sd1();
        string pathA = a.WriteSafetensors(dir.File("a.safetensors"));
        string pathB = a.Perturbed(1).WriteSafetensors(dir.File("b.safetensors"));
        byte[] before = SHA256.HashData(File.ReadAllBytes(pathA));
        var e = Assert.Throws<WorkshopException>(() => Merge(pathA, pathB, pathA, 0.5));
        Assert.Contains("overwrite the input", e.Message);
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(pathA)));
        Merge(pathA, pathB, dir.File("out.safetensors"), 0.5);
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(pathA)));
    }
}
