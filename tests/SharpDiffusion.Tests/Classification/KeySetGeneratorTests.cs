using SharpDiffusion.Formats;
using SharpDiffusion.Tests.Fixtures.KeySets;

namespace SharpDiffusion.Tests.Classification;

/// <summary>The architecture generators reproduce the real SD1.5 inventories exactly before they are trusted for SD2/SDXL.</summary>
public class KeySetGeneratorTests
{
    private static void AssertSameKeys(IEnumerable<KeyEntry> expected, IEnumerable<KeyEntry> actual)
    {
        var e = expected.Select(k => k.Line).ToList();
        var a = actual.Select(k => k.Line).ToList();
        Assert.Equal(e.Count, a.Count);
        Assert.Empty(e.Except(a));
        Assert.Empty(a.Except(e));
    }

    [Fact]
    public void LdmUnetGeneratorReproducesTheSD15UnetExactlyInOrder()
    {
        var reference = ReferenceTsv.Load("sd15_single_file.tsv").Where(e => e.Name.StartsWith("model.diffusion_model.", StringComparison.Ordinal)).ToList();
        var generated = LdmUnetKeys.Generate(LdmUnetConfig.SD15);
        Assert.Equal(686, generated.Count);
        Assert.Equal(reference.Select(k => k.Line), generated.Select(k => k.Line));
        Assert.Equal(859_520_964, generated.Sum(k => k.Shape.Aggregate(1L, (x, y) => x * y)));
    }

    [Fact]
    public void ClipLGeneratorReproducesTheSD15TextEncoderExactly()
    {
        var reference = ReferenceTsv.Load("sd15_single_file.tsv").Where(e => e.Name.StartsWith("cond_stage_model.", StringComparison.Ordinal));
        AssertSameKeys(reference, TextEncoderKeys.ClipL("cond_stage_model.transformer.text_model."));
        AssertSameKeys(ReferenceTsv.Load("sd15_diffusers_text_encoder.tsv"), TextEncoderKeys.ClipL("text_model."));
    }

    [Fact]
    public void SD15CheckpointIsExactlyTheReferenceInventory()
    {
        var reference = ReferenceTsv.Load("sd15_single_file.tsv");
        Assert.Equal(1143, reference.Count);
        AssertSameKeys(reference, CheckpointKeySets.SD15());
    }

    [Fact]
    public void SD2AndSdxlUnetsHaveTheirArchitecturesShapes()
    {
        var sd2 = LdmUnetKeys.Generate(LdmUnetConfig.SD2).ToDictionary(k => k.Name);
        Assert.Equal(new long[] { 320, 1024 }, sd2["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"].Shape);
        Assert.Equal(new long[] { 320, 320 }, sd2["model.diffusion_model.input_blocks.1.1.proj_in.weight"].Shape);
        Assert.Equal(865_910_724, sd2.Values.Sum(k => k.Shape.Aggregate(1L, (x, y) => x * y)));

        var xl = LdmUnetKeys.Generate(LdmUnetConfig.SDXL).ToDictionary(k => k.Name);
        Assert.Equal(new long[] { 1280, 2816 }, xl["model.diffusion_model.label_emb.0.0.weight"].Shape);
        Assert.Equal(new long[] { 640, 2048 }, xl["model.diffusion_model.input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight"].Shape);
        Assert.True(xl.ContainsKey("model.diffusion_model.middle_block.1.transformer_blocks.9.norm3.bias"));
        Assert.False(xl.ContainsKey("model.diffusion_model.input_blocks.1.1.norm.weight"));
        Assert.Equal(2_567_463_684, xl.Values.Sum(k => k.Shape.Aggregate(1L, (x, y) => x * y)));

        var refiner = LdmUnetKeys.Generate(LdmUnetConfig.SDXLRefiner).ToDictionary(k => k.Name);
        Assert.Equal(new long[] { 1536, 2560 }, refiner["model.diffusion_model.label_emb.0.0.weight"].Shape);
        Assert.Equal(new long[] { 384, 4, 3, 3 }, refiner["model.diffusion_model.input_blocks.0.0.weight"].Shape);
    }

    [Fact]
    public void OpenClipGeneratorsMatchTheKnownParameterCounts()
    {
        static long Count(IEnumerable<KeyEntry> keys) => keys.Sum(k => k.Shape.Aggregate(1L, (x, y) => x * y));
        // ViT-H-14 text tower, by hand: embeddings 49408*1024 + 77*1024, projection 1024^2, logit_scale 1, ln_final 2048,
        // 24 layers x (ln 2*2048 + qkv 3*1024^2+3072 + out 1024^2+1024 + fc 4096*1024+4096 + proj 1024*4096+1024).
        long perLayer = 2 * 2048 + (3L * 1024 * 1024 + 3072) + (1024L * 1024 + 1024) + (4096L * 1024 + 4096) + (1024L * 4096 + 1024);
        Assert.Equal(49408L * 1024 + 77 * 1024 + 1024 * 1024 + 1 + 2048 + 24 * perLayer, Count(TextEncoderKeys.OpenClipH("m.")));
        // ViT-bigG-14 text tower: 694,659,841
        Assert.Equal(694_659_841, Count(TextEncoderKeys.OpenClipBigG("m.")));
        Assert.Equal(123_060_480, Count(TextEncoderKeys.HuggingFaceClip("t.", 12, 768, positionIds: false)));
    }

    [Fact]
    public void KohyaModuleListReproducesTheReferenceLoraExactly()
    {
        var reference = ReferenceTsv.Load("sd15_kohya_lora_rank8.tsv");
        var generated = LoraKeySets.Kohya(LoraModules.SD1(), "lora", rank: 8, alpha: 4);
        Assert.Equal(264, LoraModules.SD1().Count);
        AssertSameKeys(reference, generated.Entries);
    }

    [Fact]
    public void EmaCopiesUseTheDotlessLitEmaNames()
    {
        var withEma = CheckpointKeySets.WithEma(CheckpointKeySets.SD15());
        var names = withEma.Select(e => e.Name).ToHashSet();
        Assert.Contains("model_ema.diffusion_modelinput_blocks00weight", names);
        Assert.Contains("model_ema.diffusion_modeloutput_blocks111transformer_blocks0attn2to_kweight", names);
        Assert.Equal(1143 + 686 + 2, withEma.Count);
        Assert.Equal(TensorDType.I32, withEma.Single(e => e.Name == "model_ema.num_updates").DType);
    }
}
