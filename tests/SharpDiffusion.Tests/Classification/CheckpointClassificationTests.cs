using System.Diagnostics;
using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;
using SharpDiffusion.Tests.Fixtures;
using SharpDiffusion.Tests.Fixtures.KeySets;
using Xunit.Abstractions;

namespace SharpDiffusion.Tests.Classification;

public class CheckpointClassificationTests
{
    private readonly ITestOutputHelper _output;

    public CheckpointClassificationTests(ITestOutputHelper output) => _output = output;

    private static ModelClassification Classify(IEnumerable<KeyEntry> keys, ModelFormat format = ModelFormat.Safetensors,
        Dictionary<string, string>? metadata = null)
    {
        var set = KeySet.Of(keys);
        if (metadata != null) foreach (var kv in metadata) set.WithMetadata(kv.Key, kv.Value);
        var file = set.ToFile(format);
        var result = ModelClassifier.Classify(file);
        ClassificationAssert.HeadersOnly(file);
        return result;
    }

    [Fact]
    public void SD15SingleFileReferenceInventory()
    {
        var keys = ReferenceTsv.Load("sd15_single_file.tsv");
        var r = Classify(keys);
        Assert.Equal(ModelKind.Checkpoint, r.Kind);
        Assert.Equal(BaseFamily.SD1, r.Base);
        Assert.Equal(new[] { "text_encoder", "unet", "vae" }, r.Components);
        Assert.Equal("fp32", r.Precision);
        Assert.Equal(4, r.InputChannels);
        Assert.Null(r.Variant);
        Assert.False(r.HasEma);
        Assert.Equal(1143, r.Tensors);
        Assert.Equal(859_520_964L + 83_653_863 + 123_060_480 + 77 + 12 * 1000, r.Parameters);
        ClassificationAssert.EvidenceMentions(r, "attn2.to_k.weight [320, 768]", "context 768 (SD1", "cond_stage_model.transformer.text_model", "EMA pruned");
    }

    [Fact]
    public void SD15Fp16WithEma()
    {
        var r = Classify(CheckpointKeySets.WithEma(CheckpointKeySets.SD15(TensorDType.F16)));
        Assert.Equal(ModelKind.Checkpoint, r.Kind);
        Assert.Equal(BaseFamily.SD1, r.Base);
        Assert.Equal("fp16", r.Precision); // DDPM buffers stay F32 but are too small to count
        Assert.True(r.HasEma);
        ClassificationAssert.EvidenceMentions(r, "model_ema.");
    }

    [Theory]
    [InlineData(9, "inpaint")]
    [InlineData(8, "instruct-pix2pix")]
    public void InputChannelsGiveTheVariant(int channels, string variant)
    {
        var r = Classify(CheckpointKeySets.SD15(inChannels: channels));
        Assert.Equal(BaseFamily.SD1, r.Base);
        Assert.Equal(channels, r.InputChannels);
        Assert.Equal(variant, r.Variant);
        ClassificationAssert.EvidenceMentions(r, "input_blocks.0.0.weight [320, " + channels + ", 3, 3]");
    }

    [Fact]
    public void SD2SaysPredictionTypeCannotBeToldFromWeights()
    {
        var r = Classify(CheckpointKeySets.SD2(TensorDType.F16));
        Assert.Equal(ModelKind.Checkpoint, r.Kind);
        Assert.Equal(BaseFamily.SD2, r.Base);
        Assert.Equal(new[] { "text_encoder", "unet", "vae" }, r.Components);
        Assert.Null(r.Variant);
        ClassificationAssert.EvidenceMentions(r, "attn2.to_k.weight [320, 1024]", "linear proj_in", "cannot be told");
    }

    [Fact]
    public void SD2InpaintWithModelspecVPrediction()
    {
        var r = Classify(CheckpointKeySets.SD2(inChannels: 9), metadata: new() { ["modelspec.prediction_type"] = "v" });
        Assert.Equal(BaseFamily.SD2, r.Base);
        Assert.Equal("inpaint, v-prediction", r.Variant);
        ClassificationAssert.EvidenceMentions(r, "modelspec.prediction_type");
    }

    [Fact]
    public void SD2ModelspecArchitectureNamesThe768VModel()
    {
        var r = Classify(CheckpointKeySets.SD2(), metadata: new() { ["modelspec.architecture"] = "stable-diffusion-v2-768-v" });
        Assert.Equal(BaseFamily.SD2, r.Base);
        Assert.Equal("v-prediction", r.Variant);
        ClassificationAssert.EvidenceMentions(r, "stable-diffusion-v2-768-v");
    }

    [Fact]
    public void OldTransformersTextEncoderNamesStillReadAsClipL()
    {
        // Checkpoints saved with transformers < 4.x lack the "text_model." level.
        var keys = CheckpointKeySets.SD15().Select(e => e with
        {
            Name = e.Name.Replace("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer.", StringComparison.Ordinal),
        });
        var r = Classify(keys);
        Assert.Equal(ModelKind.Checkpoint, r.Kind);
        Assert.Equal(new[] { "text_encoder", "unet", "vae" }, r.Components);
        Assert.Equal(BaseFamily.SD1, r.Base);
    }

    [Fact]
    public void SdxlBaseSingleFileClassifiesFast()
    {
        var keys = CheckpointKeySets.SDXL();
        var file = KeySet.Of(keys).ToFile();
        var r = ModelClassifier.Classify(file);
        Assert.Equal(ModelKind.Checkpoint, r.Kind);
        Assert.Equal(BaseFamily.SDXL, r.Base);
        Assert.Equal(new[] { "text_encoder", "text_encoder_2", "unet", "vae" }, r.Components);
        Assert.Equal("fp16", r.Precision);
        Assert.False(r.HasEma);
        ClassificationAssert.EvidenceMentions(r, "attn2.to_k.weight [640, 2048]", "label_emb.0.0.weight [1280, 2816]");

        // Reported, not asserted: wall time depends on the machine's load; CPU time is the steadier figure.
        const int runs = 100;
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < runs; i++) ModelClassifier.Classify(file);
        watch.Stop();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        _output.WriteLine($"SDXL checkpoint, {keys.Count} keys: {watch.Elapsed.TotalMilliseconds / runs:F3} ms wall, "
            + $"{cpu.TotalMilliseconds / runs:F3} ms CPU per classification");
    }

    [Fact]
    public void SdxlRefiner()
    {
        var r = Classify(CheckpointKeySets.SDXLRefiner());
        Assert.Equal(ModelKind.Checkpoint, r.Kind);
        Assert.Equal(BaseFamily.SDXLRefiner, r.Base);
        Assert.Equal(new[] { "text_encoder_2", "unet", "vae" }, r.Components);
        ClassificationAssert.EvidenceMentions(r, "label_emb.0.0.weight [1536, 2560]", "384");
    }

    [Fact]
    public void SdxlVPredictionMarker()
    {
        var keys = CheckpointKeySets.SDXL().Append(new KeyEntry("v_pred", TensorDType.F32, Array.Empty<long>()));
        var r = Classify(keys);
        Assert.Equal(BaseFamily.SDXL, r.Base);
        Assert.Equal("v-prediction", r.Variant);
    }

    [Fact]
    public void SD15DiffusersFolder()
    {
        var r = Classify(CheckpointKeySets.SD15Diffusers(), ModelFormat.Diffusers);
        Assert.Equal(ModelKind.Checkpoint, r.Kind);
        Assert.Equal(BaseFamily.SD1, r.Base);
        Assert.Equal(new[] { "text_encoder", "unet", "vae" }, r.Components);
        Assert.Equal(4, r.InputChannels);
        ClassificationAssert.EvidenceMentions(r, "diffusers layout", "unet/down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight [320, 768]");
    }

    [Fact]
    public void SdxlDiffusersFolderFromTextEncoders()
    {
        // An SDXL folder whose U-Net uses the SDXL add_embedding; text_encoder_2 is bigG in HF names.
        var keys = ReferenceTsv.Prefixed("sd15_diffusers_unet.tsv", "unet/")
            .Select(e => e.Name.EndsWith("attn2.to_k.weight", StringComparison.Ordinal) ? e with { Shape = new[] { e.Shape[0], 2048L } } : e)
            .Append(new KeyEntry("unet/add_embedding.linear_1.weight", TensorDType.F16, new long[] { 1280, 2816 }))
            .Concat(TextEncoderKeys.ClipL("text_encoder/text_model."))
            .Concat(TextEncoderKeys.HuggingFaceClip("text_encoder_2/text_model.", 32, 1280))
            .Append(new KeyEntry("text_encoder_2/text_projection.weight", TensorDType.F32, new long[] { 1280, 1280 }))
            .Concat(VaeKeys.Diffusers("vae/"));
        var r = Classify(keys, ModelFormat.Diffusers);
        Assert.Equal(BaseFamily.SDXL, r.Base);
        Assert.Equal(new[] { "text_encoder", "text_encoder_2", "unet", "vae" }, r.Components);
    }

    [Fact]
    public void UnetOnlyFiles()
    {
        var prefixed = Classify(LdmUnetKeys.Generate(LdmUnetConfig.SD15));
        Assert.Equal(ModelKind.Unet, prefixed.Kind);
        Assert.Equal(BaseFamily.SD1, prefixed.Base);
        Assert.Equal(new[] { "unet" }, prefixed.Components);

        var bare = Classify(LdmUnetKeys.Generate(LdmUnetConfig.SDXL, prefix: "", dtype: TensorDType.F16));
        Assert.Equal(ModelKind.Unet, bare.Kind);
        Assert.Equal(BaseFamily.SDXL, bare.Base);
        ClassificationAssert.EvidenceMentions(bare, "denoiser weights only");

        var diffusers = Classify(ReferenceTsv.Load("sd15_diffusers_unet.tsv"));
        Assert.Equal(ModelKind.Unet, diffusers.Kind);
        Assert.Equal(BaseFamily.SD1, diffusers.Base);
        Assert.Equal(4, diffusers.InputChannels);
    }

    [Fact]
    public void StandaloneVaeFitsSeveralFamilies()
    {
        foreach (var keys in new[] { VaeKeys.Ldm(""), VaeKeys.Ldm(), VaeKeys.Diffusers() })
        {
            var r = Classify(keys);
            Assert.Equal(ModelKind.Vae, r.Kind);
            Assert.Null(r.Base);
            Assert.Equal(new[] { BaseFamily.SD1, BaseFamily.SD2, BaseFamily.SDXL, BaseFamily.SDXLRefiner }, r.CompatibleBases);
            ClassificationAssert.EvidenceMentions(r, "decoder.conv_in.weight [512, 4, 3, 3]", "cannot tell");
        }
        var wide = Classify(VaeKeys.Ldm16Channel(""));
        Assert.Equal(ModelKind.Vae, wide.Kind);
        Assert.Equal(new[] { BaseFamily.SD3, BaseFamily.Flux }, wide.CompatibleBases);
        ClassificationAssert.EvidenceMentions(wide, "16 latent channels");
    }

    [Fact]
    public void TextEncoderOnlyFiles()
    {
        var clipL = Classify(TextEncoderKeys.ClipL("text_model."));
        Assert.Equal(ModelKind.TextEncoder, clipL.Kind);
        Assert.Null(clipL.Base);
        Assert.Contains(BaseFamily.SD1, clipL.CompatibleBases);
        ClassificationAssert.EvidenceMentions(clipL, "token_embedding.weight [49408, 768]");

        var vitH = Classify(TextEncoderKeys.OpenClipH("cond_stage_model.model."));
        Assert.Equal(ModelKind.TextEncoder, vitH.Kind);
        Assert.Equal(BaseFamily.SD2, vitH.Base);
        ClassificationAssert.EvidenceMentions(vitH, "OpenCLIP ViT-H", "24 layers");
    }

    [Fact]
    public void FluxAndSD3()
    {
        var flux = Classify(CheckpointKeySets.FluxTransformer());
        Assert.Equal(ModelKind.Unet, flux.Kind);
        Assert.Equal(BaseFamily.Flux, flux.Base);
        Assert.Equal("bf16", flux.Precision);
        ClassificationAssert.EvidenceMentions(flux, "double_blocks.0.");

        var sd3 = Classify(CheckpointKeySets.SD3Transformer()
            .Concat(TextEncoderKeys.ClipL("text_encoders.clip_l.transformer.text_model."))
            .Concat(TextEncoderKeys.HuggingFaceClip("text_encoders.clip_g.transformer.text_model.", 32, 1280))
            .Concat(VaeKeys.Ldm16Channel()));
        Assert.Equal(ModelKind.Checkpoint, sd3.Kind);
        Assert.Equal(BaseFamily.SD3, sd3.Base);
        Assert.Equal(16, sd3.InputChannels);
        Assert.Equal(new[] { "text_encoder", "text_encoder_2", "transformer", "vae" }, sd3.Components);
        ClassificationAssert.EvidenceMentions(sd3, "joint_blocks.0.");
    }

    [Fact]
    public void PrecisionKinds()
    {
        var unet = LdmUnetKeys.Generate(LdmUnetConfig.SD15);
        Assert.Equal("bf16", Classify(unet.Select(e => e with { DType = TensorDType.BF16 })).Precision);
        Assert.Equal("fp8", Classify(unet.Select(e => e with { DType = e.Shape.Length > 1 ? TensorDType.F8_E4M3 : TensorDType.F32 })).Precision);
        // Half the big weights in fp16, half in fp32: mixed.
        Assert.Equal("mixed", Classify(unet.Select((e, i) => e with { DType = i % 2 == 0 ? TensorDType.F16 : TensorDType.F32 })).Precision);

        var gguf = unet.Select(e =>
        {
            var t = e.ToTensorInfo();
            return t.Rank > 1 ? t with { DType = TensorDType.Quantized, TypeName = "Q4_K" } : t;
        });
        var r = ModelClassifier.Classify(new InMemoryModelFile(gguf, format: ModelFormat.Gguf));
        Assert.Equal("Q4_K", r.Precision);
        Assert.Equal(BaseFamily.SD1, r.Base);
    }

    [Fact]
    public void UnknownAndEmptyFilesExplainThemselves()
    {
        var empty = ModelClassifier.Classify(new InMemoryModelFile(Array.Empty<TensorInfo>()));
        Assert.Equal(ModelKind.Unknown, empty.Kind);
        ClassificationAssert.EvidenceMentions(empty, "no tensors");

        var odd = Classify(new[] { new KeyEntry("encoder.layer.0.attention.self.query.weight", TensorDType.F32, new long[] { 768, 768 }) });
        Assert.Equal(ModelKind.Unknown, odd.Kind);
        ClassificationAssert.EvidenceMentions(odd, "encoder.layer.0.attention.self.query.weight [768, 768]");
    }
}
