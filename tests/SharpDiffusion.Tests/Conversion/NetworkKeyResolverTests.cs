using SharpDiffusion.Architectures;
using SharpDiffusion.Conversion;

namespace SharpDiffusion.Tests.Conversion;

public sealed class NetworkKeyResolverTests
{
    private static readonly IReadOnlyList<InventoryEntry> Model = ReferenceInventory.SingleFile;
    private static readonly IReadOnlyList<InventoryEntry> Kohya = ReferenceInventory.Load("sd15_kohya_lora_rank8.tsv");

    [Fact]
    public void Every_module_of_the_sd15_kohya_lora_resolves_to_a_weight_of_matching_size()
    {
        var resolver = NetworkKeyResolver.ForModel(Model.Select(e => e.Name));
        var shapes = Model.ToDictionary(e => e.Name, e => e.Shape);
        var lora = Kohya.ToDictionary(e => e.Name, e => e.Shape);

        var result = resolver.Resolve(Kohya.Select(e => e.Name));

        Assert.Empty(result.Unused);
        Assert.Equal(264, result.Modules.Count);
        Assert.Equal(72, result.Modules.Count(m => m.Target.Part == ModelPart.TextEncoder));
        Assert.Equal(192, result.Modules.Count(m => m.Target.Part == ModelPart.Unet));
        Assert.Equal(264, result.Modules.Select(m => m.Target.WeightKey).Distinct().Count());
        foreach (var m in result.Modules)
        {
            Assert.Equal(NetworkAlgorithm.LoRA, m.Algorithm);
            Assert.Equal([NetworkTensorRoles.Up, NetworkTensorRoles.Down, NetworkTensorRoles.Alpha], m.Tensors.Keys);
            var target = shapes[m.Target.WeightKey];
            var up = lora[m.Tensors[NetworkTensorRoles.Up]];
            var down = lora[m.Tensors[NetworkTensorRoles.Down]];
            Assert.Equal(target[0], up[0]);
            Assert.Equal(target.Skip(1).Aggregate(1L, (a, b) => a * b), down.Skip(1).Aggregate(1L, (a, b) => a * b));
            Assert.Equal(8, down[0]);
            string bias = m.Target.WeightKey[..^"weight".Length] + "bias";
            Assert.Equal(shapes.ContainsKey(bias) ? bias : null, m.Target.BiasKey); // SD attention q/k/v have none
            Assert.Equal(1, m.Target.SliceCount);
        }
    }

    [Theory]
    [InlineData("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight")]
    [InlineData("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q", "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight")]
    [InlineData("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q", "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight")]
    [InlineData("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q", "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight")]
    [InlineData("unet.up_blocks.3.attentions.2.transformer_blocks.0.attn2.processor.to_out", "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.attn2.to_out.0.weight")]
    [InlineData("lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_ff_net_0_proj", "model.diffusion_model.output_blocks.3.1.transformer_blocks.0.ff.net.0.proj.weight")]
    [InlineData("lora_unet_mid_block_attentions_0_proj_out", "model.diffusion_model.middle_block.1.proj_out.weight")]
    [InlineData("lora_unet_down_blocks_1_resnets_0_conv1", "model.diffusion_model.input_blocks.4.0.in_layers.2.weight")]
    [InlineData("lora_unet_up_blocks_0_upsamplers_0_conv", "model.diffusion_model.output_blocks.2.1.conv.weight")]
    [InlineData("diffusion_model.output_blocks.2.1.conv", "model.diffusion_model.output_blocks.2.1.conv.weight")]
    [InlineData("lora_te_text_model_encoder_layers_0_self_attn_k_proj", "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.k_proj.weight")]
    [InlineData("lora_te1_text_model_encoder_layers_11_mlp_fc2", "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight")]
    [InlineData("text_encoder.text_model.encoder.layers.3.self_attn.out_proj", "cond_stage_model.transformer.text_model.encoder.layers.3.self_attn.out_proj.weight")]
    public void Every_naming_style_resolves_to_the_model_weight(string module, string weightKey)
    {
        var resolver = NetworkKeyResolver.ForModel(Model.Select(e => e.Name));
        Assert.True(resolver.TryResolve(module, out var target), module);
        Assert.Equal(weightKey, target.WeightKey);
        Assert.Empty(resolver.Collisions);
    }

    [Theory]
    [InlineData(".lora_A.weight", ".lora_B.weight")]
    [InlineData(".lora.down.weight", ".lora.up.weight")]
    [InlineData(".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight")]
    public void Peft_and_diffusers_suffixes_give_the_same_modules_as_kohya(string downSuffix, string upSuffix)
    {
        var resolver = NetworkKeyResolver.ForModel(Model.Select(e => e.Name));
        var map = CheckpointKeyMap.FromLdmKeys(Model.Select(e => e.Name));
        var kohya = resolver.Resolve(Kohya.Select(e => e.Name)).Modules;
        var renamed = new List<string>();
        var expected = new Dictionary<string, string>();
        foreach (var m in kohya)
        {
            var c = Assert.Single(map.ToDiffusers(m.Target.WeightKey));
            string module = (c.Component == "unet" ? "unet." : "text_encoder.") + c.DiffusersKey[..^".weight".Length];
            renamed.Add(module + downSuffix);
            renamed.Add(module + upSuffix);
            expected[module] = m.Target.WeightKey;
        }

        var result = resolver.Resolve(renamed);

        Assert.Empty(result.Unused);
        Assert.Equal(264, result.Modules.Count);
        Assert.All(result.Modules, m => Assert.Equal(expected[m.Name], m.Target.WeightKey));
        Assert.All(result.Modules, m => Assert.Equal(2, m.Tensors.Count));
    }

    [Fact]
    public void Attention_processor_lora_keys_split_at_the_underscore()
    {
        var resolver = NetworkKeyResolver.ForModel(Model.Select(e => e.Name));
        var result = resolver.Resolve([
            "unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight",
            "unet.mid_block.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight",
        ]);
        var m = Assert.Single(result.Modules);
        Assert.Equal("model.diffusion_model.middle_block.1.transformer_blocks.0.attn1.to_out.0.weight", m.Target.WeightKey);
        Assert.Equal("model.diffusion_model.middle_block.1.transformer_blocks.0.attn1.to_out.0.bias", m.Target.BiasKey);
        Assert.Empty(result.Unused);
    }

    [Fact]
    public void Keys_that_match_nothing_are_reported_unused()
    {
        var resolver = NetworkKeyResolver.ForModel(Model.Select(e => e.Name));
        string q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
        var result = resolver.Resolve([
            q + ".lora_up.weight", q + ".lora_down.weight", q + ".alpha", q + ".hada_t1",
            "lora_unet_down_blocks_9_attentions_0_proj_in.lora_up.weight", "lora_unet_down_blocks_9_attentions_0_proj_in.lora_down.weight",
            "lora_te_text_model_encoder_layers_0_self_attn_k_proj.alpha",
            "ss_metadata_blob",
        ]);
        Assert.Equal(q, Assert.Single(result.Modules).Name);
        Assert.Equal(
            new[] { "ss_metadata_blob", q + ".hada_t1", "lora_unet_down_blocks_9_attentions_0_proj_in.lora_up.weight",
                "lora_unet_down_blocks_9_attentions_0_proj_in.lora_down.weight", "lora_te_text_model_encoder_layers_0_self_attn_k_proj.alpha" }.Order(),
            result.Unused.Order());
    }

    [Fact]
    public void A_bias_difference_for_a_layer_without_bias_is_unused()
    {
        var resolver = NetworkKeyResolver.ForModel(Model.Select(e => e.Name));
        string q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"; // SD attention q has no bias
        var result = resolver.Resolve([q + ".diff", q + ".diff_b", "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_k.diff_b"]);
        var m = Assert.Single(result.Modules);
        Assert.Equal(["diff"], m.Tensors.Keys);
        Assert.Equal([q + ".diff_b", "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_k.diff_b"], result.Unused);
    }

    [Theory]
    [InlineData(NetworkAlgorithm.LoHa, new[] { "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "alpha" })]
    [InlineData(NetworkAlgorithm.LoHa, new[] { "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2", "alpha", "dora_scale" })]
    [InlineData(NetworkAlgorithm.LoKr, new[] { "lokr_w1", "lokr_w2" })]
    [InlineData(NetworkAlgorithm.LoKr, new[] { "lokr_w1", "lokr_w2_a", "lokr_w2_b", "lokr_t2", "alpha" })]
    [InlineData(NetworkAlgorithm.LoKr, new[] { "lokr_w1_a", "lokr_w1_b", "lokr_w2", "alpha" })]
    [InlineData(NetworkAlgorithm.IA3, new[] { "weight", "on_input" })]
    [InlineData(NetworkAlgorithm.Full, new[] { "diff", "diff_b" })]
    [InlineData(NetworkAlgorithm.Norm, new[] { "w_norm", "b_norm" })]
    [InlineData(NetworkAlgorithm.GLoRA, new[] { "a1.weight", "a2.weight", "b1.weight", "b2.weight", "alpha" })]
    [InlineData(NetworkAlgorithm.LoRA, new[] { "lora_up.weight", "lora_down.weight", "lora_mid.weight", "alpha", "dora_scale" })]
    [InlineData(NetworkAlgorithm.LoRA, new[] { "lora_up.weight", "lora_down.weight", "alpha", "lora_magnitude_vector" })]
    public void Lycoris_modules_are_classified_by_their_tensors(NetworkAlgorithm algorithm, string[] roles)
    {
        var resolver = NetworkKeyResolver.ForModel(Model.Select(e => e.Name));
        string module = "lora_unet_down_blocks_1_resnets_0_conv1";
        var result = resolver.Resolve(roles.Select(r => module + "." + r));
        var m = Assert.Single(result.Modules);
        Assert.Empty(result.Unused);
        Assert.Equal(algorithm, m.Algorithm);
        Assert.Equal(roles.Order(), m.Tensors.Keys.Order());
        Assert.All(m.Tensors, t => Assert.Equal(module + "." + t.Key, t.Value));
        Assert.Equal("model.diffusion_model.input_blocks.4.0.in_layers.2.bias", m.Target.BiasKey);
    }

    [Fact]
    public void Sdxl_te2_kohya_names_in_hf_clip_terms_resolve_to_openclip_row_blocks()
    {
        var keys = SdxlKeys();
        var resolver = NetworkKeyResolver.ForModel(keys);
        Assert.Empty(resolver.Collisions);

        string[] qkv = ["q_proj", "k_proj", "v_proj"];
        for (int i = 0; i < 3; i++)
        {
            foreach (var alias in new[] { $"lora_te2_text_model_encoder_layers_1_self_attn_{qkv[i]}", $"text_encoder_2.text_model.encoder.layers.1.self_attn.{qkv[i]}" })
            {
                Assert.True(resolver.TryResolve(alias, out var t), alias);
                Assert.Equal(new NetworkTarget("conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_weight",
                    "conditioner.embedders.1.model.transformer.resblocks.1.attn.in_proj_bias", ModelPart.TextEncoder2, i, 3), t);
            }
        }
        Assert.True(resolver.TryResolve("lora_te2_text_model_encoder_layers_0_mlp_fc1", out var fc1));
        Assert.Equal(("conditioner.embedders.1.model.transformer.resblocks.0.mlp.c_fc.weight", 1), (fc1.WeightKey, fc1.SliceCount));
        Assert.True(resolver.TryResolve("lora_te2_text_model_encoder_layers_0_self_attn_out_proj", out var outProj));
        Assert.Equal("conditioner.embedders.1.model.transformer.resblocks.0.attn.out_proj.bias", outProj.BiasKey);
        Assert.True(resolver.TryResolve("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", out var te1));
        Assert.Equal(("conditioner.embedders.0.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight", ModelPart.TextEncoder), (te1.WeightKey, te1.Part));
        Assert.False(resolver.TryResolve("lora_te_text_model_encoder_layers_0_self_attn_k_proj_x", out _));

        foreach (var alias in new[] { "lora_unet_input_blocks_4_1_transformer_blocks_1_attn2_to_k", "lora_unet_down_blocks_1_attentions_0_transformer_blocks_1_attn2_to_k" })
        {
            Assert.True(resolver.TryResolve(alias, out var t), alias);
            Assert.Equal("model.diffusion_model.input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight", t.WeightKey);
        }
        Assert.True(resolver.TryResolve("lora_unet_label_emb_0_0", out var label));
        Assert.Equal("model.diffusion_model.label_emb.0.0.weight", label.WeightKey);
        Assert.True(resolver.TryResolve("lora_unet_add_embedding_linear_1", out var add));
        Assert.Equal(label, add);
    }

    [Fact]
    public void Sd2_lora_te_names_resolve_to_the_openclip_h_text_encoder()
    {
        var keys = new List<string>(Model.Where(e => e.Name.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal)).Select(e => e.Name))
        {
            "cond_stage_model.model.transformer.resblocks.22.attn.in_proj_weight",
            "cond_stage_model.model.transformer.resblocks.22.attn.in_proj_bias",
            "cond_stage_model.model.transformer.resblocks.22.mlp.c_proj.weight",
            "cond_stage_model.model.transformer.resblocks.22.mlp.c_proj.bias",
        };
        var resolver = NetworkKeyResolver.ForModel(keys);
        var result = resolver.Resolve([
            "lora_te_text_model_encoder_layers_22_self_attn_v_proj.lora_up.weight",
            "lora_te_text_model_encoder_layers_22_self_attn_v_proj.lora_down.weight",
            "text_encoder.text_model.encoder.layers.22.mlp.fc2.lora_A.weight",
            "text_encoder.text_model.encoder.layers.22.mlp.fc2.lora_B.weight",
        ]);
        Assert.Empty(result.Unused);
        Assert.Equal(
            [new NetworkTarget("cond_stage_model.model.transformer.resblocks.22.attn.in_proj_weight", "cond_stage_model.model.transformer.resblocks.22.attn.in_proj_bias", ModelPart.TextEncoder, 2, 3),
             new NetworkTarget("cond_stage_model.model.transformer.resblocks.22.mlp.c_proj.weight", "cond_stage_model.model.transformer.resblocks.22.mlp.c_proj.bias", ModelPart.TextEncoder)],
            result.Modules.Select(m => m.Target));
    }

    [Theory]
    [InlineData("<lora:detail:0.8>", "detail", 0.8, 0.8, null)]
    [InlineData("<lora:detail>", "detail", 1.0, 1.0, null)]
    [InlineData("<lora:detail:0.5:1.2>", "detail", 0.5, 1.2, null)]
    [InlineData("<lora:detail:0:1>", "detail", 0.0, 1.0, null)]
    [InlineData("<lyco:style:1:0.7:16>", "style", 1.0, 0.7, 16)]
    [InlineData("<lora:detail:te=0.25:unet=0.5>", "detail", 0.25, 0.5, null)]
    [InlineData("<lora:detail:0.6:unet=0.1:dyn=8>", "detail", 0.6, 0.1, 8)]
    public void A1111_tags_split_text_encoder_and_unet_strength(string tag, string name, double te, double unet, int? dyn)
    {
        var parsed = A1111NetworkTag.Parse(tag);
        Assert.Equal((name, te, unet, dyn), (parsed.Name, parsed.TextEncoderStrength, parsed.UnetStrength, parsed.DynamicDim));
        Assert.Equal(unet, parsed.StrengthFor(ModelPart.Unet));
        Assert.Equal(te, parsed.StrengthFor(ModelPart.TextEncoder2));
    }

    [Theory]
    [InlineData("<lora>")]
    [InlineData("<lora:x:strong>")]
    [InlineData("<lora:te=1>")]
    public void Bad_tags_are_a_format_error_naming_the_tag(string tag)
    {
        var e = Assert.Throws<FormatException>(() => A1111NetworkTag.Parse(tag));
        Assert.Contains(tag, e.Message, StringComparison.Ordinal);
    }

    /// <summary>An SDXL key set: U-Net (LDM names from the SDXL layout), CLIP-L and OpenCLIP bigG layers 0-1.</summary>
    private static List<string> SdxlKeys()
    {
        var keys = new List<string>();
        foreach (var d in SyntheticUnet.DiffusersKeys(UnetLayout.Sdxl))
        {
            var ldm = UnetKeyNames.ToLdm(d, UnetLayout.Sdxl)!;
            keys.Add(LdmPrefixes.Unet + ldm);
            keys.Add(LdmPrefixes.Unet + ldm[..^"weight".Length] + "bias");
        }
        // Second transformer block at level 1 (SDXL depth 2) and the class-label embedding.
        keys.Add(LdmPrefixes.Unet + "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight");
        keys.Add(LdmPrefixes.Unet + "label_emb.0.0.weight");
        keys.Add(LdmPrefixes.Unet + "label_emb.0.2.weight");
        for (int layer = 0; layer < 2; layer++)
        {
            foreach (var m in new[] { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2" })
            {
                keys.Add($"{ModelArchitectures.Sdxl.TextEncoders[0].Prefix}text_model.encoder.layers.{layer}.{m}.weight");
                keys.Add($"{ModelArchitectures.Sdxl.TextEncoders[0].Prefix}text_model.encoder.layers.{layer}.{m}.bias");
            }
            foreach (var m in new[] { "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight", "attn.out_proj.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "ln_1.weight" })
                keys.Add($"{ModelArchitectures.Sdxl.TextEncoders[1].Prefix}transformer.resblocks.{layer}.{m}");
        }
        keys.Add(ModelArchitectures.Sdxl.TextEncoders[1].Prefix + "text_projection");
        return keys;
    }
}
