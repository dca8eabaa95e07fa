using SharpDiffusion.Engine.Models;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Tests.Models;

/// <summary>The YAML subset reader on the constructs of LDM/sgm configs, and its errors.</summary>
public class YamlSubsetReaderTests
{
    // Shaped like sd_xl_base.yaml: sequences of maps, lists at the key's indent, comments, quoted strings.
    private const string SdxlLikeYaml = """
        model:
          target: sgm.models.diffusion.DiffusionEngine
          params:
            scale_factor: 0.13025
            disable_first_stage_autocast: True

            network_config:
              target: sgm.modules.diffusionmodules.openaimodel.UNetModel
              params:
                adm_in_channels: 2816
                num_classes: sequential
                use_checkpoint: True
                in_channels: 4
                out_channels: 4
                model_channels: 320
                attention_resolutions: [4, 2]
                num_res_blocks: 2
                channel_mult: [1, 2, 4]
                num_head_channels: 64
                use_linear_in_transformer: True
                transformer_depth: [1, 2, 10]  # note: the first is unused (due to attn_res starting at 2) 32, 16, 8 --> 64, 32, 16
                context_dim: 2048
                spatial_transformer_attn_type: softmax-xformers
                legacy: False

            conditioner_config:
              target: sgm.modules.GeneralConditioner
              params:
                emb_models:
                  # crossattn cond
                  - is_trainable: False
                    input_key: txt
                    target: sgm.modules.encoders.modules.FrozenCLIPEmbedder
                    params:
                      layer: hidden
                      layer_idx: 11
                  # vector cond
                  - is_trainable: False
                    input_key: original_size_as_tuple
                    target: sgm.modules.encoders.modules.ConcatTimestepEmbedderND
                    params:
                      outdim: 256  # multiplied by two
            first_stage_config:
              target: sgm.models.autoencoder.AutoencoderKLInferenceWrapper
              params:
                embed_dim: 4
                monitor: val/rec_loss
                ddconfig:
                  attn_type: vanilla-xformers
                  double_z: true
                  z_channels: 4
                  resolution: 256
                  in_channels: 3
                  out_ch: 3
                  ch: 128
                  ch_mult: [1, 2, 4, 4]
                  num_res_blocks: 2
                  attn_resolutions: []
                  dropout: 0.0
                lossconfig:
                  target: torch.nn.Identity
        """;

    [Fact]
    public void ReadsSdxlBaseShapedConfig()
    {
        var tree = new ConfigTree(YamlSubsetReader.Parse(SdxlLikeYaml, "sd_xl_base.yaml"), "sd_xl_base.yaml");
        var unet = UNetConfig.FromLdmConfig(tree);
        Assert.Equal(new[] { 1, 2, 4 }, unet.ChannelMult);
        Assert.Equal(new[] { 0, 2, 10 }, unet.TransformerDepth);
        Assert.Equal(10, unet.TransformerDepthMiddle);
        Assert.Equal(2816, unet.AdmInChannels);
        Assert.Equal(2048, unet.ContextDim);
        Assert.True(unet.UseLinearInTransformer);
        Assert.Equal((10, 64), unet.HeadsFor(640));
        var vae = VaeConfig.FromLdmConfig(tree);
        Assert.Equal(0.13025, vae.ScaleFactor);
        Assert.Equal(new[] { 1, 2, 4, 4 }, vae.ChMult);

        var models = Assert.IsAssignableFrom<IReadOnlyList<object?>>(tree.Find("model.params.conditioner_config.params.emb_models"));
        Assert.Equal(2, models.Count);
        Assert.Equal(11L, ConfigTree.Find(models[0], "params.layer_idx"));
        Assert.Equal(false, ConfigTree.Find(models[1], "is_trainable"));
        Assert.Equal("original_size_as_tuple", ConfigTree.Find(models[1], "input_key"));
        Assert.Equal(256L, ConfigTree.Find(models[1], "params.outdim"));
    }

    [Fact]
    public void TypesScalarsAsPyYamlDoes()
    {
        var root = YamlSubsetReader.Parse("""
            a: 1.0e-04
            b: 1.e-6
            c: [ 10000000000000 ]
            d: "jpg"
            e: 'it''s'
            f: ~
            g: True
            h: val/loss_simple_ema
            i: {}
            j: { x: 1, y: [a, b] }
            k:
            - 1
            - - 2
              - 3
            l: "a # not a comment"
            """, "t.yaml");
        Assert.Equal(1.0e-4, ConfigTree.Find(root, "a"));
        Assert.Equal(1e-6, ConfigTree.Find(root, "b"));
        Assert.Equal(new object?[] { 10000000000000L }, Assert.IsAssignableFrom<IReadOnlyList<object?>>(ConfigTree.Find(root, "c")));
        Assert.Equal("jpg", ConfigTree.Find(root, "d"));
        Assert.Equal("it's", ConfigTree.Find(root, "e"));
        Assert.Null(ConfigTree.Find(root, "f"));
        Assert.Equal(true, ConfigTree.Find(root, "g"));
        Assert.Equal("val/loss_simple_ema", ConfigTree.Find(root, "h"));
        Assert.Empty(Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(ConfigTree.Find(root, "i")));
        Assert.Equal(1L, ConfigTree.Find(root, "j.x"));
        Assert.Equal(new object?[] { "a", "b" }, Assert.IsAssignableFrom<IReadOnlyList<object?>>(ConfigTree.Find(root, "j.y")));
        var k = Assert.IsAssignableFrom<IReadOnlyList<object?>>(ConfigTree.Find(root, "k"));
        Assert.Equal(1L, k[0]);
        Assert.Equal(new object?[] { 2L, 3L }, Assert.IsAssignableFrom<IReadOnlyList<object?>>(k[1]));
        Assert.Equal("a # not a comment", ConfigTree.Find(root, "l"));
    }

    [Theory]
    [InlineData("a: [1, 2\nb: 3", "line 1")]
    [InlineData("a: &anchor 1", "anchors")]
    [InlineData("a:\n  b: 1\n    c: 2", "line 3")]
    [InlineData("just text", "expected 'key: value'")]
    public void RejectsWhatItDoesNotRead(string yaml, string expected)
    {
        var e = Assert.Throws<InvalidModelFileException>(() => YamlSubsetReader.Parse(yaml, "bad.yaml"));
        Assert.StartsWith("bad.yaml: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void FindsTheYamlBesideACheckpoint()
    {
        using var dir = new TempDir();
        var checkpoint = dir.File("model.safetensors");
        File.WriteAllBytes(checkpoint, Array.Empty<byte>());
        Assert.Null(LdmConfigFile.FindBeside(checkpoint));
        File.WriteAllText(dir.File("model.yaml"), Sd15Configs.V1InferenceYaml);
        var found = LdmConfigFile.FindBeside(checkpoint);
        Assert.Equal(dir.File("model.yaml"), found);
        var unet = UNetConfig.FromLdmConfig(LdmConfigFile.Load(found!));
        Assert.True(unet.SameArchitecture(Sd15Configs.UNet));
    }

    [Fact]
    public void UnsupportedArchitecturesAreNamed()
    {
        var tree = new ConfigTree(YamlSubsetReader.Parse("""
            model:
              params:
                unet_config:
                  params:
                    in_channels: 4
                    out_channels: 4
                    model_channels: 32
                    attention_resolutions: [2]
                    num_res_blocks: 1
                    channel_mult: [1, 2]
                    num_heads: 4
                    use_spatial_transformer: False
            """, "old.yaml"), "old.yaml");
        var e = Assert.Throws<InvalidModelFileException>(() => UNetConfig.FromLdmConfig(tree));
        Assert.Contains("use_spatial_transformer", e.Message);
    }
}
