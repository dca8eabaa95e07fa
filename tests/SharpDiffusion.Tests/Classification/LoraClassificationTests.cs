using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;
using SharpDiffusion.Tests.Fixtures.KeySets;

namespace SharpDiffusion.Tests.Classification;

public class LoraClassificationTests
{
    private static ModelClassification Classify(KeySet set)
    {
        var file = set.ToFile();
        var result = ModelClassifier.Classify(file);
        ClassificationAssert.HeadersOnly(file);
        Assert.Equal(ModelKind.Lora, result.Kind);
        Assert.NotNull(result.Lora);
        return result;
    }

    [Fact]
    public void ReferenceKohyaLoraRank8()
    {
        var r = Classify(LoraKeySets.ReferenceSD15());
        var lora = r.Lora!;
        Assert.Equal("lora", lora.Algorithm);
        Assert.Equal("kohya", lora.Style);
        Assert.Equal(264, lora.Modules);
        Assert.Equal(new[] { 8 }, lora.Ranks);
        Assert.Equal(new[] { 4.0 }, lora.Alphas);
        Assert.Equal(new[] { "unet", "text_encoder" }, lora.Targets);
        Assert.Equal(0, lora.ConvModules);
        Assert.Equal(BaseFamily.SD1, r.Base);
        Assert.Equal("fp16", r.Precision);
        Assert.Equal(792, r.Tensors);
        ClassificationAssert.EvidenceMentions(r, "attn2_to_k", "context 768 (SD1)", ".lora_down.weight");
    }

    [Theory]
    [InlineData("lora", "lora", ".lora_down.weight")]
    [InlineData("loha", "loha", ".hada_w1_a")]
    [InlineData("lokr", "lokr", ".lokr_w1")]
    [InlineData("dora", "dora", ".dora_scale")]
    [InlineData("glora", "glora", ".a1.weight")]
    [InlineData("full", "full", ".diff")]
    public void Sd1AlgorithmsAreRecognised(string algorithm, string expected, string evidenceKey)
    {
        var r = Classify(LoraKeySets.Kohya(LoraModules.SD1(), algorithm, rank: 16, alpha: 8));
        var lora = r.Lora!;
        Assert.Equal(expected, lora.Algorithm);
        Assert.Equal(264, lora.Modules);
        Assert.Equal(BaseFamily.SD1, r.Base);
        Assert.Equal(new[] { "unet", "text_encoder" }, lora.Targets);
        if (algorithm == "full") Assert.Empty(lora.Ranks);
        else Assert.Equal(new[] { 16 }, lora.Ranks);
        if (algorithm is "lora" or "loha" or "lokr" or "dora" or "glora") Assert.Equal(new[] { 8.0 }, lora.Alphas);
        ClassificationAssert.EvidenceMentions(r, evidenceKey);
    }

    [Fact]
    public void LoconAddsConvModules()
    {
        var targets = LoraModules.SD1().Concat(LoraModules.SD1UnetConv()).ToList();
        var r = Classify(LoraKeySets.Kohya(targets, "locon", rank: 8, alpha: 1));
        Assert.Equal("locon", r.Lora!.Algorithm);
        Assert.Equal(targets.Count, r.Lora.Modules);
        Assert.True(r.Lora.ConvModules >= 22, "resnet conv1/conv2 + samplers are conv modules, got " + r.Lora.ConvModules);
        ClassificationAssert.EvidenceMentions(r, "LoCon", "resnets");
    }

    [Fact]
    public void Ia3UsesOnInputFlagsAndMetadataForTheFamily()
    {
        var set = LoraKeySets.Kohya(LoraModules.SD1(), "ia3").WithMetadata("modelspec.architecture", "stable-diffusion-v1/lora");
        var r = Classify(set);
        Assert.Equal("ia3", r.Lora!.Algorithm);
        Assert.Equal(264, r.Lora.Modules);
        Assert.Empty(r.Lora.Ranks);
        Assert.Equal(BaseFamily.SD1, r.Base);
        ClassificationAssert.EvidenceMentions(r, ".on_input", "modelspec.architecture");
    }

    [Fact]
    public void NormModulesAlone()
    {
        var norms = LoraModules.SD1Unet().Where(t => t.Path.EndsWith("proj_in", StringComparison.Ordinal))
            .Select(t => new LoraTarget(t.Path.Replace("proj_in", "norm", StringComparison.Ordinal), "unet", new[] { t.Out })).ToList();
        var r = Classify(LoraKeySets.Kohya(norms, "norm"));
        Assert.Equal("norm", r.Lora!.Algorithm);
        Assert.Equal(16, r.Lora.Modules);
    }

    [Theory]
    [InlineData("lora")]
    [InlineData("loha")]
    [InlineData("lokr")]
    [InlineData("dora")]
    [InlineData("glora")]
    [InlineData("full")]
    [InlineData("ia3")]
    public void SdxlKohyaWithBothTextEncoders(string algorithm)
    {
        var r = Classify(LoraKeySets.Kohya(LoraModules.SDXL(), algorithm, rank: 4, alpha: 1, sdxl: true));
        Assert.Equal(algorithm, r.Lora!.Algorithm);
        Assert.Equal(BaseFamily.SDXL, r.Base);
        Assert.Equal(new[] { "unet", "text_encoder", "text_encoder_2" }, r.Lora.Targets);
        Assert.Equal(LoraModules.SDXL().Count, r.Lora.Modules);
        if (algorithm == "ia3")
        {
            // IA3 vectors carry no input width; the second text encoder names the family.
            ClassificationAssert.EvidenceMentions(r, "lora_te2_", "SDXL");
        }
        else
        {
            ClassificationAssert.EvidenceMentions(r, "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", "2048");
        }
    }

    [Fact]
    public void SdxlFirstTextEncoderOnly()
    {
        var te1 = LoraModules.SDXLTextEncoders().Where(t => t.Component == "text_encoder");
        var r = Classify(LoraKeySets.Kohya(te1, "lora", sdxl: true));
        Assert.Equal(BaseFamily.SDXL, r.Base);
        Assert.Equal(new[] { "text_encoder" }, r.Lora!.Targets);
        ClassificationAssert.EvidenceMentions(r, "lora_te1_");
    }

    [Theory]
    [InlineData(TensorDType.F32)]
    [InlineData(TensorDType.BF16)]
    public void AlphasAreReadInEveryFloatType(TensorDType dtype)
    {
        var r = Classify(LoraKeySets.Kohya(LoraModules.SD1(), "lora", rank: 32, alpha: 16, dtype: dtype));
        Assert.Equal(new[] { 16.0 }, r.Lora!.Alphas);
        Assert.Equal(new[] { 32 }, r.Lora.Ranks);
    }

    [Fact]
    public void SdxlLoconOnResnets()
    {
        var targets = LoraModules.SDXLUnet().Concat(LoraModules.SDXLUnetConv()).ToList();
        var r = Classify(LoraKeySets.Kohya(targets, "locon", rank: 8, alpha: 8, sdxl: true));
        Assert.Equal("locon", r.Lora!.Algorithm);
        Assert.Equal(new[] { "unet" }, r.Lora.Targets);
        Assert.Equal(BaseFamily.SDXL, r.Base);
        Assert.True(r.Lora.ConvModules > 0);
    }

    [Fact]
    public void Sd2LoraFromContextWidth()
    {
        var r = Classify(LoraKeySets.Kohya(LoraModules.SD2Unet(), "lora", rank: 32, alpha: 16));
        Assert.Equal(BaseFamily.SD2, r.Base);
        Assert.Equal(new[] { 32 }, r.Lora!.Ranks);
        ClassificationAssert.EvidenceMentions(r, "1024");
    }

    [Fact]
    public void PeftStyles()
    {
        var plain = Classify(LoraKeySets.Peft(LoraModules.SD1Unet(), rank: 4, componentPrefix: false));
        Assert.Equal("peft", plain.Lora!.Style);
        Assert.Equal("lora", plain.Lora.Algorithm);
        Assert.Equal(new[] { "unet" }, plain.Lora.Targets);
        Assert.Equal(192, plain.Lora.Modules);
        Assert.Equal(BaseFamily.SD1, plain.Base);
        ClassificationAssert.EvidenceMentions(plain, "base_model.model.", ".lora_A.weight");

        var prefixed = Classify(LoraKeySets.Peft(LoraModules.SD1(), rank: 4, componentPrefix: true));
        Assert.Equal("peft", prefixed.Lora!.Style);
        Assert.Equal(new[] { "unet", "text_encoder" }, prefixed.Lora.Targets);
        Assert.Equal(264, prefixed.Lora.Modules);
    }

    [Fact]
    public void DiffusersStyle()
    {
        var r = Classify(LoraKeySets.Diffusers(LoraModules.SD1(), rank: 4));
        Assert.Equal("diffusers", r.Lora!.Style);
        Assert.Equal(264, r.Lora.Modules);
        Assert.Equal(new[] { 4 }, r.Lora.Ranks);
        Assert.Equal(new[] { "unet", "text_encoder" }, r.Lora.Targets);
        Assert.Equal(BaseFamily.SD1, r.Base);
    }

    [Fact]
    public void FluxPeftLora()
    {
        var set = new KeySet();
        for (int i = 0; i < 3; i++)
        {
            set.Add($"transformer.single_transformer_blocks.{i}.attn.to_k.lora_A.weight", TensorDType.BF16, 16, 3072);
            set.Add($"transformer.single_transformer_blocks.{i}.attn.to_k.lora_B.weight", TensorDType.BF16, 3072, 16);
        }
        var r = Classify(set);
        Assert.Equal(BaseFamily.Flux, r.Base);
        Assert.Equal(new[] { 16 }, r.Lora!.Ranks);
        Assert.Equal("peft", r.Lora.Style);
    }

    [Fact]
    public void KohyaMetadataGivesTriggerWordsAndNetworkSettings()
    {
        var set = LoraKeySets.ReferenceSD15()
            .WithMetadata("ss_network_module", "networks.lora")
            .WithMetadata("ss_network_dim", "8")
            .WithMetadata("ss_network_alpha", "4")
            .WithMetadata("ss_network_args", "{\"conv_dim\": \"4\", \"algo\": \"locon\"}")
            .WithMetadata("ss_base_model_version", "sd_v1")
            .WithMetadata("ss_sd_model_name", "v1-5-pruned-emaonly.safetensors")
            .WithMetadata("modelspec.title", "Tiny Style")
            .WithMetadata("ss_tag_frequency",
                "{\"10_tinystyle\": {\"tinystyle\": 40, \"1girl\": 12, \"solo\": 9}, \"5_extra\": {\"1girl\": 30, \"outdoors\": 3, \"solo\": 2}}");
        var r = Classify(set);
        Assert.Equal(new[] { "1girl", "tinystyle", "solo", "outdoors" }, r.TriggerWords);
        Assert.Equal("networks.lora", r.Lora!.NetworkModule);
        Assert.Equal("locon", r.Lora.NetworkAlgo);
        Assert.Equal("4", r.Lora.ConvDim);
        Assert.Equal("v1-5-pruned-emaonly.safetensors", r.Lora.BaseModelName);
        Assert.Equal("Tiny Style", r.Title);
        ClassificationAssert.EvidenceMentions(r, "ss_network_module = networks.lora");
    }

    [Fact]
    public void TriggerPhraseComesFirstAndTagsAreCappedAtTen()
    {
        var freq = "{\"a\": {" + string.Join(", ", Enumerable.Range(0, 15).Select(i => $"\"tag{i}\": {100 - i}")) + "}}";
        Assert.Equal(10, KohyaMetadataTopTags(freq).Count);
        var r = Classify(LoraKeySets.ReferenceSD15().WithMetadata("modelspec.trigger_phrase", "tnystl, red hat").WithMetadata("ss_tag_frequency", freq));
        Assert.Equal(new[] { "tnystl", "red hat", "tag0" }, r.TriggerWords.Take(3));
        Assert.Equal(10, r.TriggerWords.Count);
    }

    private static List<string> KohyaMetadataTopTags(string json)
    {
        var set = LoraKeySets.ReferenceSD15().WithMetadata("ss_tag_frequency", json);
        return ModelClassifier.Classify(set.ToFile()).TriggerWords;
    }

    [Fact]
    public void LoraWithoutFamilySignalsFallsBackToMetadata()
    {
        // Only self-attention modules: their widths are shared by all SD1/SD2 U-Nets.
        var selfAttention = LoraModules.SD1Unet().Where(t => t.Path.Contains("attn1", StringComparison.Ordinal));
        var r = Classify(LoraKeySets.Kohya(selfAttention, "lora").WithMetadata("ss_base_model_version", "sd_v1"));
        Assert.Equal(BaseFamily.SD1, r.Base);
        ClassificationAssert.EvidenceMentions(r, "ss_base_model_version = sd_v1");

        var unknown = Classify(LoraKeySets.Kohya(selfAttention, "lora"));
        Assert.Null(unknown.Base);
        ClassificationAssert.EvidenceMentions(unknown, "base unknown");
    }
}
