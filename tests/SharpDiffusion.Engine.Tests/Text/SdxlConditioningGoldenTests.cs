using SharpDiffusion.Architectures;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Engine.Text.Prompts;
using SharpDiffusion.Formats.Safetensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Text;

/// <summary>SDXL's two encoders, pooled vector, size embeddings and zeroed negative against tiny_sdxl (fp32, max abs ≤ 1e-4).</summary>
public class SdxlConditioningGoldenTests(ITestOutputHelper output)
{
    private const string Golden = "tiny_sdxl_golden.safetensors";
    private const double Tolerance = 1e-4;

    private static (ClipTextModel ClipL, OpenClipTextModel ClipG) LoadEncoders()
    {
        var config = TextGolden.Json("tiny_sdxl.config.json").GetProperty("text_encoders");
        using var file = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sdxl.safetensors"));
        var clipL = ClipTextModel.Load(file, ModelArchitectures.Sdxl.TextEncoders[0].Prefix,
            new TextEncoderOptions { Heads = config.GetProperty("clip_l").GetProperty("num_attention_heads").GetInt32() });
        var clipG = OpenClipTextModel.Load(file, ModelArchitectures.Sdxl.TextEncoders[1].Prefix,
            new TextEncoderOptions { Heads = config.GetProperty("clip_g").GetProperty("heads").GetInt32() });
        return (clipL, clipG);
    }

    private static SdxlTextConditioner Conditioner(ClipTextModel l, OpenClipTextModel g) =>
        new(l, g, new PromptChunker(TextGolden.HfTokenizer), sizeEmbeddingDim: 16);

    private void AssertClose(string name, Tensor actual)
    {
        using var expected = TextGolden.Read(Golden, name);
        var diff = TextGolden.MaxAbsDiff(actual, expected);
        output.WriteLine($"{name}: max abs diff {diff:E2}");
        Assert.True(diff <= Tolerance, $"{name}: max abs diff {diff:E2}");
    }

    private static List<ImageSizeConditioning> GoldenSizes()
    {
        var sizes = TextGolden.Json("tiny_sdxl_golden.json").GetProperty("text_sizes");
        int Get(string key, int row, int i) => sizes.GetProperty(key)[row][i].GetInt32();
        return Enumerable.Range(0, 3).Select(r => new ImageSizeConditioning(
            Get("original_size_as_tuple", r, 0), Get("original_size_as_tuple", r, 1),
            Get("crop_coords_top_left", r, 0), Get("crop_coords_top_left", r, 1),
            Get("target_size_as_tuple", r, 0), Get("target_size_as_tuple", r, 1))).ToList();
    }

    [Fact]
    public void EncodersReproduceEveryTextGolden()
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        var (clipL, clipG) = LoadEncoders();
        using (clipL)
        using (clipG)
        {
            var index = TextGolden.Json("tiny_sdxl_golden.json");
            var idsL = TextEncoderGoldenTests.Ids(index.GetProperty("text_input_ids_clip_l"));
            var idsG = TextEncoderGoldenTests.Ids(index.GetProperty("text_input_ids_clip_g"));
            using var outL = clipL.Encode(idsL);
            using var outG = clipG.Encode(idsG);
            AssertClose("text.clip_l.hidden_state", outL.FromEnd(2));
            AssertClose("text.clip_l.last_hidden_state", clipL.FinalLayerNorm(outL.FromEnd(1)));
            AssertClose("text.clip_g.penultimate_hidden_state", outG.FromEnd(2));
            AssertClose("text.clip_g.last_hidden_state", outG.FromEnd(1));
            AssertClose("text.clip_g.last_ln_final", clipG.FinalLayerNorm(outG.FromEnd(1)));
            AssertClose("text.clip_g.pooled", clipG.Pool(outG.FromEnd(1), idsG));
        }
    }

    [Fact]
    public void ConditionerGivesCrossAttentionAndVector()
    {
        using var scope = NewDisposeScope();
        var (clipL, clipG) = LoadEncoders();
        using (clipL)
        using (clipG)
        {
            var prompts = TextEncoderGoldenTests.Strings(TextGolden.Json("tiny_sdxl_golden.json").GetProperty("text_prompts"));
            using var cond = Conditioner(clipL, clipG).Encode(prompts, GoldenSizes(), isNegative: false);
            AssertClose("cond.crossattn", cond.CrossAttention);
            AssertClose("cond.vector", cond.Vector!);

            // Every prompt empty and negative: text parts zero, size embeddings kept (row 1's prompt is "", so use three "").
            using var zeroed = Conditioner(clipL, clipG).Encode(new[] { "", "", "" }, GoldenSizes(), isNegative: true);
            Assert.Equal(0.0, zeroed.CrossAttention.abs().max().item<float>());
            AssertClose("cond.force_zero_txt.vector", zeroed.Vector!);
        }
    }

    [Fact]
    public void SizeEmbeddingsMatch()
    {
        using var scope = NewDisposeScope();
        var sizes = GoldenSizes();
        using var all = SizeEmbedding.ForSizes(sizes, 16);
        AssertClose("cond.emb.original_size_as_tuple", all.narrow(1, 0, 32));
        AssertClose("cond.emb.crop_coords_top_left", all.narrow(1, 32, 32));
        AssertClose("cond.emb.target_size_as_tuple", all.narrow(1, 64, 32));
        using var raw = TextGolden.Read(Golden, "cond.original_size_as_tuple");
        AssertClose("cond.emb.original_size_as_tuple", SizeEmbedding.Embed(raw, 16));
    }

    [Fact]
    public void SamplingConditioningWithZeroedEmptyNegative()
    {
        using var scope = NewDisposeScope();
        var (clipL, clipG) = LoadEncoders();
        using (clipL)
        using (clipG)
        {
            var sampling = TextGolden.Json("tiny_sdxl_golden.json").GetProperty("sampling");
            var conditioner = Conditioner(clipL, clipG);
            var size = ImageSizeConditioning.ForImage(1024, 1024);
            using var cond = conditioner.Encode(new[] { sampling.GetProperty("prompt").GetString()! }, sizes: size);
            using var uncond = conditioner.Encode(new[] { sampling.GetProperty("negative_prompt").GetString()! }, isNegative: true, sizes: size);
            AssertClose("sample.cond.crossattn", cond.CrossAttention);
            AssertClose("sample.cond.vector", cond.Vector!);
            AssertClose("sample.uncond.crossattn", uncond.CrossAttention);
            AssertClose("sample.uncond.vector", uncond.Vector!);

            // A non-empty negative is encoded normally.
            using var negative = conditioner.Encode(new[] { "blurry" }, isNegative: true, sizes: size);
            Assert.True(negative.CrossAttention.abs().max().item<float>() > 0.1f);
        }
    }

    [Fact]
    public void SeparateTokenizersPerEncoderAsA1111()
    {
        // A1111 tokenizes CLIP-L with transformers' tokenizer and bigG with open_clip's (which html-unescapes).
        using var scope = NewDisposeScope();
        var (clipL, clipG) = LoadEncoders();
        using (clipL)
        using (clipG)
        {
            var size = ImageSizeConditioning.ForImage(1024, 1024);
            var split = new SdxlTextConditioner(clipL, clipG, new PromptChunker(TextGolden.HfTokenizer), 16,
                chunkerG: new PromptChunker(TextGolden.Tokenizer));
            using var plain = split.Encode(new[] { "tom & jerry" }, sizes: size);
            using var escaped = split.Encode(new[] { "tom &amp; jerry" }, sizes: size);
            // bigG sees the same text both times (columns 8..23 and the pooled vector); CLIP-L does not (columns 0..7).
            Assert.True(TextGolden.MaxAbsDiff(plain.CrossAttention.narrow(2, 8, 16), escaped.CrossAttention.narrow(2, 8, 16)) < 1e-6);
            Assert.True(TextGolden.MaxAbsDiff(plain.Vector!, escaped.Vector!) < 1e-6);
            Assert.True(TextGolden.MaxAbsDiff(plain.CrossAttention.narrow(2, 0, 8), escaped.CrossAttention.narrow(2, 0, 8)) > 1e-3);
        }
    }
}
