using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;
using SharpDiffusion.Tests.Fixtures.KeySets;

namespace SharpDiffusion.Tests.Classification;

/// <summary>Embeddings, hypernetworks, ControlNets and upscalers.</summary>
public class NetworkClassificationTests
{
    private static ModelClassification Classify(KeySet set)
    {
        var file = set.ToFile();
        var result = ModelClassifier.Classify(file);
        ClassificationAssert.HeadersOnly(file);
        return result;
    }

    [Theory]
    [InlineData(1, 768, BaseFamily.SD1)]
    [InlineData(8, 768, BaseFamily.SD1)]
    [InlineData(8, 1024, BaseFamily.SD2)]
    public void A1111Embeddings(int vectors, int width, BaseFamily family)
    {
        var r = Classify(NetworkKeySets.A1111Embedding(vectors, width, "my-style", 3000));
        Assert.Equal(ModelKind.Embedding, r.Kind);
        Assert.Equal(family, r.Base);
        var e = r.Embedding!;
        Assert.Equal("a1111", e.Layout);
        Assert.Equal(vectors, e.Vectors);
        Assert.Equal(new[] { width }, e.Dims);
        Assert.Equal("my-style", e.Token);
        Assert.Equal(3000, e.Step);
        ClassificationAssert.EvidenceMentions(r, $"string_to_param.* [{vectors}, {width}]");
    }

    [Fact]
    public void SdxlEmbedding()
    {
        var r = Classify(NetworkKeySets.SdxlEmbedding(8));
        Assert.Equal(ModelKind.Embedding, r.Kind);
        Assert.Equal(BaseFamily.SDXL, r.Base);
        Assert.Equal("sdxl", r.Embedding!.Layout);
        Assert.Equal(8, r.Embedding.Vectors);
        Assert.Equal(new[] { 768, 1280 }, r.Embedding.Dims);
        ClassificationAssert.EvidenceMentions(r, "clip_l [8, 768]", "clip_g [8, 1280]");
    }

    [Fact]
    public void EmbParamsAndDiffusersEmbeddings()
    {
        var emb = Classify(NetworkKeySets.EmbParamsEmbedding(4));
        Assert.Equal(ModelKind.Embedding, emb.Kind);
        Assert.Equal("emb_params", emb.Embedding!.Layout);
        Assert.Equal(4, emb.Embedding.Vectors);
        Assert.Equal(BaseFamily.SD1, emb.Base);

        var diffusers = Classify(NetworkKeySets.DiffusersEmbedding("<cat-toy>"));
        Assert.Equal(ModelKind.Embedding, diffusers.Kind);
        Assert.Equal("diffusers", diffusers.Embedding!.Layout);
        Assert.Equal("<cat-toy>", diffusers.Embedding.Token);
        Assert.Equal(1, diffusers.Embedding.Vectors);
        ClassificationAssert.EvidenceMentions(diffusers, "<cat-toy> [768]");
    }

    [Fact]
    public void HypernetworkWithMetadata()
    {
        var r = Classify(NetworkKeySets.Hypernetwork(new[] { 768, 320, 640, 1280 }, new[] { 1.0, 2, 1 }));
        Assert.Equal(ModelKind.Hypernetwork, r.Kind);
        Assert.Equal(BaseFamily.SD1, r.Base);
        var h = r.Hypernetwork!;
        Assert.Equal(new[] { 1.0, 2, 1 }, h.LayerStructure);
        Assert.Equal(new[] { 320, 640, 768, 1280 }, h.Dims);
        Assert.Equal("relu", h.Activation);
        Assert.False(h.LayerNorm);
        Assert.False(h.Dropout);
        Assert.Equal(1200, h.Step);
        Assert.Equal("tiny_hn", h.Name);
        ClassificationAssert.EvidenceMentions(r, "768.0.linear.0.weight [1536, 768]", "layer_structure");
    }

    [Fact]
    public void HypernetworkStructureFromShapesWhenMetadataIsMissing()
    {
        var r = Classify(NetworkKeySets.Hypernetwork(new[] { 768 }, new[] { 1, 1.5, 0.5, 1 }, layerNorm: true, activation: "swish", withMetadata: false));
        Assert.Equal(ModelKind.Hypernetwork, r.Kind);
        Assert.Equal(new[] { 1, 1.5, 0.5, 1 }, r.Hypernetwork!.LayerStructure);
        Assert.True(r.Hypernetwork.LayerNorm);
        Assert.Equal(BaseFamily.SD1, r.Base);
        ClassificationAssert.EvidenceMentions(r, "from the linear shapes");
    }

    [Fact]
    public void HypernetworkDimsNameTheFamily()
    {
        Assert.Equal(BaseFamily.SD2, Classify(NetworkKeySets.Hypernetwork(new[] { 1024, 320, 640, 1280 }, new[] { 1.0, 2, 1 })).Base);
        Assert.Equal(BaseFamily.SDXL, Classify(NetworkKeySets.Hypernetwork(new[] { 2048, 640, 1280 }, new[] { 1.0, 2, 1 })).Base);
        var v1 = Classify(NetworkKeySets.HypernetworkV1(new[] { 768, 320 }));
        Assert.Equal(ModelKind.Hypernetwork, v1.Kind);
        Assert.Equal(new[] { 1.0, 2, 1 }, v1.Hypernetwork!.LayerStructure);
        ClassificationAssert.EvidenceMentions(v1, "linear1");
    }

    [Theory]
    [InlineData("sd15", BaseFamily.SD1, "[320, 768]")]
    [InlineData("sd2", BaseFamily.SD2, "[320, 1024]")]
    [InlineData("sdxl", BaseFamily.SDXL, "[640, 2048]")]
    public void LdmControlNets(string config, BaseFamily family, string contextShape)
    {
        var c = config switch { "sd15" => LdmUnetConfig.SD15, "sd2" => LdmUnetConfig.SD2, _ => LdmUnetConfig.SDXL };
        var r = Classify(NetworkKeySets.ControlNet(c));
        Assert.Equal(ModelKind.ControlNet, r.Kind);
        Assert.Equal(family, r.Base);
        Assert.Equal(4, r.InputChannels);
        ClassificationAssert.EvidenceMentions(r, "control_model.input_hint_block.0.weight", contextShape);
    }

    [Fact]
    public void DiffusersControlNet()
    {
        var r = Classify(NetworkKeySets.DiffusersControlNet());
        Assert.Equal(ModelKind.ControlNet, r.Kind);
        Assert.Equal(BaseFamily.SD1, r.Base);
        ClassificationAssert.EvidenceMentions(r, "controlnet_cond_embedding.conv_in.weight");
    }

    [Fact]
    public void T2IAdapter()
    {
        var set = new KeySet().Add("conv_in.weight", TensorDType.F32, 320, 192, 3, 3);
        for (int i = 0; i < 4; i++) set.Add($"body.{i}.block1.weight", TensorDType.F32, 320, 320, 3, 3).Add($"body.{i}.block2.weight", TensorDType.F32, 320, 320, 1, 1);
        var r = Classify(set);
        Assert.Equal(ModelKind.ControlNet, r.Kind);
        Assert.Equal("t2i-adapter", r.Variant);
        Assert.Null(r.Base);
        Assert.Equal(new[] { BaseFamily.SD1, BaseFamily.SD2 }, r.CompatibleBases);
    }

    [Fact]
    public void Upscalers()
    {
        var old = Classify(NetworkKeySets.EsrganOld());
        Assert.Equal(ModelKind.Upscaler, old.Kind);
        Assert.Equal("esrgan", old.Variant);
        Assert.Null(old.Base);
        ClassificationAssert.EvidenceMentions(old, "model.0.weight [64, 3, 3, 3]", "RRDB");

        var real = Classify(NetworkKeySets.RealEsrgan());
        Assert.Equal(ModelKind.Upscaler, real.Kind);
        Assert.Equal("real-esrgan", real.Variant);
        ClassificationAssert.EvidenceMentions(real, "params_ema.conv_first.weight");

        var swin = Classify(new KeySet().Add("conv_first.weight", TensorDType.F32, 180, 3, 3, 3)
            .Add("layers.0.residual_group.blocks.0.attn.relative_position_bias_table", TensorDType.F32, 225, 6)
            .Add("conv_after_body.weight", TensorDType.F32, 180, 180, 3, 3));
        Assert.Equal(ModelKind.Upscaler, swin.Kind);
        Assert.Equal("swinir", swin.Variant);
    }
}
