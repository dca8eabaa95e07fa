using SharpDiffusion.Architectures;
using SharpDiffusion.Conversion;

namespace SharpDiffusion.Tests.Conversion;

public sealed class CheckpointKeyMapTests
{
    [Fact]
    public void Sd15_layout_is_inferred_from_both_key_sets()
    {
        var ldm = ReferenceInventory.SingleFile.Select(e => e.Name).ToList();
        var map = CheckpointKeyMap.FromLdmKeys(ldm);
        Assert.Equal(ModelArchitectures.Sd1, map.Architecture);
        Assert.Equal(UnetLayout.Sd1, map.Unet);
        Assert.Equal(4, map.VaeLevels);

        var folder = CheckpointKeyMap.FromDiffusersKeys(ReferenceInventory.DiffusersFolder.Select(e => e.Name));
        Assert.Equal(ModelArchitectures.Sd1, folder.Architecture);
        Assert.Equal(UnetLayout.Sd1, folder.Unet);
        Assert.Equal(4, folder.VaeLevels);
        Assert.Equal(VaeAttentionNames.Modern, folder.VaeNames);
    }

    [Fact]
    public void Every_sd15_single_file_key_maps_to_a_diffusers_key_of_equal_shape_one_to_one()
    {
        var single = ReferenceInventory.SingleFile;
        var folder = ReferenceInventory.DiffusersFolder.ToDictionary(e => e.Name);
        var map = CheckpointKeyMap.FromLdmKeys(single.Select(e => e.Name));
        var shapes = single.ToDictionary(e => e.Name, e => e.Shape);

        var mapping = map.MapLdmKeys(single.Select(e => e.Name));

        // Only the DDPM schedule buffers lack a counterpart (the diffusers scheduler recomputes them).
        Assert.Equal(ReferenceInventory.DdpmBuffers.Order(), mapping.Unmapped.Order());
        var seen = new HashSet<string>();
        int reshaped = 0;
        foreach (var c in mapping.Correspondences)
        {
            Assert.True(folder.TryGetValue(c.FolderTensorName, out var target), $"{c.LdmKey} -> {c.FolderTensorName}: not in the diffusers folder");
            Assert.True(seen.Add(c.FolderTensorName), $"{c.FolderTensorName} is the target of two keys");
            Assert.Equal(shapes[c.LdmKey], c.LdmShapeFromDiffusers(target.Shape));
            Assert.Equal(target.Shape, c.DiffusersShapeFromLdm(shapes[c.LdmKey]));
            if (c.Transform == TensorTransform.Conv1x1ToLinear) reshaped++;
            else Assert.Equal(TensorTransform.None, c.Transform);
        }
        Assert.Equal(folder.Count, seen.Count);
        Assert.Equal(1131, seen.Count);
        Assert.Equal(8, reshaped); // q, k, v, proj_out weights of the encoder and of the decoder mid attention
    }

    [Fact]
    public void Every_sd15_diffusers_key_maps_back_to_the_single_file_key_it_came_from()
    {
        var single = ReferenceInventory.SingleFile.ToDictionary(e => e.Name);
        var folderEntries = ReferenceInventory.DiffusersFolder;
        var map = CheckpointKeyMap.FromDiffusersKeys(folderEntries.Select(e => e.Name));

        var back = map.MapDiffusersKeys(folderEntries.Select(e => e.Name));

        Assert.Empty(back.Unmapped);
        Assert.Equal(folderEntries.Count, back.Correspondences.Select(c => c.LdmKey).Distinct().Count());
        var shapes = folderEntries.ToDictionary(e => e.Name, e => e.Shape);
        foreach (var c in back.Correspondences)
        {
            Assert.True(single.TryGetValue(c.LdmKey, out var source), $"{c.FolderTensorName} -> {c.LdmKey}: not in the single file");
            Assert.Equal(source.Shape, c.LdmShapeFromDiffusers(shapes[c.FolderTensorName]));
            // And forward again gives the same diffusers key.
            Assert.Equal(c.DiffusersKey, Assert.Single(map.ToDiffusers(c.LdmKey)).DiffusersKey);
        }
    }

    [Theory]
    [InlineData("model.diffusion_model.input_blocks.0.0.weight", "unet", "conv_in.weight")]
    [InlineData("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", "unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight")]
    [InlineData("model.diffusion_model.input_blocks.3.0.op.weight", "unet", "down_blocks.0.downsamplers.0.conv.weight")]
    [InlineData("model.diffusion_model.input_blocks.4.0.skip_connection.bias", "unet", "down_blocks.1.resnets.0.conv_shortcut.bias")]
    [InlineData("model.diffusion_model.input_blocks.11.0.out_layers.3.weight", "unet", "down_blocks.3.resnets.1.conv2.weight")]
    [InlineData("model.diffusion_model.middle_block.2.emb_layers.1.weight", "unet", "mid_block.resnets.1.time_emb_proj.weight")]
    [InlineData("model.diffusion_model.output_blocks.2.1.conv.weight", "unet", "up_blocks.0.upsamplers.0.conv.weight")]
    [InlineData("model.diffusion_model.output_blocks.5.2.conv.bias", "unet", "up_blocks.1.upsamplers.0.conv.bias")]
    [InlineData("model.diffusion_model.output_blocks.11.1.proj_out.weight", "unet", "up_blocks.3.attentions.2.proj_out.weight")]
    [InlineData("model.diffusion_model.out.2.weight", "unet", "conv_out.weight")]
    [InlineData("first_stage_model.decoder.up.3.block.0.conv1.weight", "vae", "decoder.up_blocks.0.resnets.0.conv1.weight")]
    [InlineData("first_stage_model.decoder.up.1.upsample.conv.weight", "vae", "decoder.up_blocks.2.upsamplers.0.conv.weight")]
    [InlineData("first_stage_model.encoder.down.1.block.0.nin_shortcut.weight", "vae", "encoder.down_blocks.1.resnets.0.conv_shortcut.weight")]
    [InlineData("first_stage_model.encoder.mid.attn_1.norm.weight", "vae", "encoder.mid_block.attentions.0.group_norm.weight")]
    [InlineData("cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.bias", "text_encoder", "text_model.encoder.layers.11.mlp.fc2.bias")]
    public void Sd15_names_follow_the_diffusers_conversion_script(string ldm, string component, string diffusers)
    {
        var map = CheckpointKeyMap.Create(ModelArchitectures.Sd1, UnetLayout.Sd1);
        var c = Assert.Single(map.ToDiffusers(ldm));
        Assert.Equal((component, diffusers), (c.Component, c.DiffusersKey));
        Assert.Equal(ldm, map.ToLdm(component, diffusers)?.LdmKey);
    }

    [Theory]
    [InlineData("q", "to_q", "query")]
    [InlineData("k", "to_k", "key")]
    [InlineData("v", "to_v", "value")]
    [InlineData("proj_out", "to_out.0", "proj_attn")]
    public void Vae_attention_accepts_modern_and_legacy_names_and_records_the_reshape(string ldm, string modern, string legacy)
    {
        var modernMap = CheckpointKeyMap.Create(ModelArchitectures.Sd1, UnetLayout.Sd1);
        var legacyMap = CheckpointKeyMap.Create(ModelArchitectures.Sd1, UnetLayout.Sd1, vaeNames: VaeAttentionNames.Legacy);
        string ldmWeight = $"first_stage_model.decoder.mid.attn_1.{ldm}.weight";

        var m = Assert.Single(modernMap.ToDiffusers(ldmWeight));
        Assert.Equal(($"decoder.mid_block.attentions.0.{modern}.weight", TensorTransform.Conv1x1ToLinear), (m.DiffusersKey, m.Transform));
        var l = Assert.Single(legacyMap.ToDiffusers(ldmWeight));
        Assert.Equal($"decoder.mid_block.attentions.0.{legacy}.weight", l.DiffusersKey);
        Assert.Equal(new long[] { 512, 512, 1, 1 }, l.LdmShapeFromDiffusers([512, 512]));

        foreach (var name in new[] { modern, legacy })
        {
            var back = modernMap.ToLdm("vae", $"decoder.mid_block.attentions.0.{name}.weight");
            Assert.Equal((ldmWeight, TensorTransform.Conv1x1ToLinear), (back?.LdmKey, back?.Transform));
            var bias = modernMap.ToLdm("vae", $"decoder.mid_block.attentions.0.{name}.bias");
            Assert.Equal(($"first_stage_model.decoder.mid.attn_1.{ldm}.bias", TensorTransform.None), (bias?.LdmKey, bias?.Transform));
        }
        var legacyFolder = CheckpointKeyMap.FromDiffusersKeys(
            ReferenceInventory.DiffusersFolder.Select(e => e.Name.Replace(".attentions.0.to_q.", ".attentions.0.query.")));
        Assert.Equal(VaeAttentionNames.Legacy, legacyFolder.VaeNames);
    }

    [Fact]
    public void A_vae_alone_maps_without_a_unet()
    {
        var vae = ReferenceInventory.SingleFile.Where(e => e.Name.StartsWith(LdmPrefixes.Vae, StringComparison.Ordinal)).Select(e => e.Name).ToList();
        var map = CheckpointKeyMap.FromLdmKeys(vae);
        var mapping = map.MapLdmKeys(vae);
        Assert.Empty(mapping.Unmapped);
        Assert.Equal(248, mapping.Correspondences.Count);
        Assert.All(mapping.Correspondences, c => Assert.Equal(DiffusersComponents.Vae, c.Component));
        var folder = CheckpointKeyMap.FromDiffusersKeys(ReferenceInventory.DiffusersFolder.Where(e => e.Name.StartsWith("vae/", StringComparison.Ordinal)).Select(e => e.Name));
        Assert.Equal(4, folder.VaeLevels);
    }

    [Theory]
    [InlineData("input_blocks.0.0.weight", "conv_in.weight")]
    [InlineData("input_blocks.1.0.in_layers.0.weight", "down_blocks.0.resnets.0.norm1.weight")]
    [InlineData("input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight")]
    [InlineData("input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight", "down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k.weight")]
    [InlineData("input_blocks.8.1.transformer_blocks.9.ff.net.2.weight", "down_blocks.2.attentions.1.transformer_blocks.9.ff.net.2.weight")]
    [InlineData("middle_block.1.proj_in.weight", "mid_block.attentions.0.proj_in.weight")]
    [InlineData("output_blocks.2.2.conv.weight", "up_blocks.0.upsamplers.0.conv.weight")]
    [InlineData("output_blocks.5.2.conv.weight", "up_blocks.1.upsamplers.0.conv.weight")]
    [InlineData("output_blocks.8.0.skip_connection.weight", "up_blocks.2.resnets.2.conv_shortcut.weight")]
    [InlineData("label_emb.0.0.weight", "add_embedding.linear_1.weight")]
    [InlineData("label_emb.0.2.bias", "add_embedding.linear_2.bias")]
    public void Sdxl_unet_names_come_from_its_three_level_layout(string ldm, string diffusers)
    {
        Assert.Equal(diffusers, UnetKeyNames.ToDiffusers(ldm, UnetLayout.Sdxl));
        Assert.Equal(ldm, UnetKeyNames.ToLdm(diffusers, UnetLayout.Sdxl));
    }

    [Fact]
    public void Sdxl_level_zero_has_no_attention_so_its_transformer_keys_have_no_counterpart()
    {
        Assert.Null(UnetKeyNames.ToDiffusers("input_blocks.1.1.proj_in.weight", UnetLayout.Sdxl));
        Assert.Null(UnetKeyNames.ToLdm("down_blocks.0.attentions.0.proj_in.weight", UnetLayout.Sdxl));
        Assert.Null(UnetKeyNames.ToLdm("up_blocks.2.upsamplers.0.conv.weight", UnetLayout.Sdxl)); // last level: no upsampler
        Assert.Null(UnetKeyNames.ToDiffusers("input_blocks.9.0.op.weight", UnetLayout.Sdxl));
    }

    [Theory]
    [InlineData(4, 2, new[] { 0, 1, 2 })]
    [InlineData(3, 2, new[] { 1, 2 })]
    [InlineData(4, 1, new[] { 1, 3 })]
    [InlineData(2, 3, new int[0])]
    [InlineData(1, 2, new[] { 0 })]
    public void Any_layout_round_trips_and_is_inferred_back_from_its_own_keys(int levels, int resBlocks, int[] attention)
    {
        var layout = new UnetLayout(levels, resBlocks, attention.ToHashSet());
        var diffusers = SyntheticUnet.DiffusersKeys(layout);
        var ldm = new List<string>();
        foreach (var key in diffusers)
        {
            var l = UnetKeyNames.ToLdm(key, layout);
            Assert.True(l != null, $"{key}: no LDM counterpart in {layout}");
            Assert.Equal(key, UnetKeyNames.ToDiffusers(l, layout));
            ldm.Add(l);
        }
        Assert.Equal(diffusers.Count, ldm.Distinct().Count());
        Assert.Equal(layout, UnetLayout.FromDiffusersKeys(diffusers));
        Assert.Equal(layout, UnetLayout.FromLdmKeys(ldm.Select(k => LdmPrefixes.Unet + k)));
        // LDM numbering: conv_in + levels*(res blocks + 1) - 1 input blocks.
        int inputBlocks = ldm.Where(k => k.StartsWith("input_blocks.", StringComparison.Ordinal)).Select(k => k.Split('.')[1]).Distinct().Count();
        Assert.Equal(levels * (resBlocks + 1), inputBlocks);
    }

    [Fact]
    public void Openclip_in_proj_splits_into_q_k_v_and_text_projection_is_transposed()
    {
        var map = CheckpointKeyMap.Create(ModelArchitectures.Sdxl, UnetLayout.Sdxl);
        var parts = map.ToDiffusers("conditioner.embedders.1.model.transformer.resblocks.5.attn.in_proj_weight");
        Assert.Equal(
            ["text_model.encoder.layers.5.self_attn.q_proj.weight", "text_model.encoder.layers.5.self_attn.k_proj.weight", "text_model.encoder.layers.5.self_attn.v_proj.weight"],
            parts.Select(p => p.DiffusersKey));
        Assert.All(parts, p => Assert.Equal((DiffusersComponents.TextEncoder2, TensorTransform.RowSlice, 3), (p.Component, p.Transform, p.SliceCount)));
        Assert.Equal([0, 1, 2], parts.Select(p => p.SliceIndex));
        Assert.Equal(new long[] { 3840, 1280 }, parts[1].LdmShapeFromDiffusers([1280, 1280]));
        Assert.Equal(new long[] { 1280, 1280 }, parts[2].DiffusersShapeFromLdm([3840, 1280]));

        var k = map.ToLdm(DiffusersComponents.TextEncoder2, "text_model.encoder.layers.5.self_attn.k_proj.bias");
        Assert.Equal(("conditioner.embedders.1.model.transformer.resblocks.5.attn.in_proj_bias", 1), (k?.LdmKey, k?.SliceIndex));

        var projection = Assert.Single(map.ToDiffusers("conditioner.embedders.1.model.text_projection"));
        Assert.Equal(("text_projection.weight", TensorTransform.Transpose), (projection.DiffusersKey, projection.Transform));
        Assert.Equal("conditioner.embedders.1.model.transformer.resblocks.0.mlp.c_fc.weight",
            map.ToLdm(DiffusersComponents.TextEncoder2, "text_model.encoder.layers.0.mlp.fc1.weight")?.LdmKey);
        Assert.Equal("conditioner.embedders.0.transformer.text_model.final_layer_norm.bias",
            map.ToLdm(DiffusersComponents.TextEncoder, "text_model.final_layer_norm.bias")?.LdmKey);
        Assert.Empty(map.ToDiffusers("conditioner.embedders.1.model.logit_scale"));
    }

    [Fact]
    public void Sd2_openclip_text_encoder_is_the_diffusers_text_encoder_without_projection()
    {
        var map = CheckpointKeyMap.Create(ModelArchitectures.Sd2, UnetLayout.Sd1);
        Assert.Equal("text_model.embeddings.position_embedding.weight",
            Assert.Single(map.ToDiffusers("cond_stage_model.model.positional_embedding")).DiffusersKey);
        Assert.Equal("text_model.encoder.layers.22.layer_norm2.weight",
            Assert.Single(map.ToDiffusers("cond_stage_model.model.transformer.resblocks.22.ln_2.weight")).DiffusersKey);
        Assert.Empty(map.ToDiffusers("cond_stage_model.model.text_projection"));
        Assert.Equal("cond_stage_model.model.transformer.resblocks.3.attn.in_proj_weight",
            map.ToLdm(DiffusersComponents.TextEncoder, "text_model.encoder.layers.3.self_attn.v_proj.weight")?.LdmKey);
        Assert.Null(map.ToLdm(DiffusersComponents.TextEncoder, "text_model.embeddings.position_ids"));
    }
}
