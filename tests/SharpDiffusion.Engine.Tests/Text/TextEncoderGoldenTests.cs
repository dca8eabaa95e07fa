using SharpDiffusion.Architectures;
using System.Text.Json;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Text.Encoders;
using SharpDiffusion.Engine.Text.Prompts;
using SharpDiffusion.Formats.Safetensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Text;

/// <summary>CLIP / OpenCLIP encoders and the SD1/SD2 conditioners against the tiny model goldens (fp32, max abs ≤ 1e-4).</summary>
public class TextEncoderGoldenTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    internal static int Heads(string config, string section) =>
        TextGolden.Json(config).GetProperty(section).GetProperty("num_attention_heads").GetInt32();

    internal static Tensor Ids(JsonElement rows) =>
        tensor(rows.EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetInt64())).ToArray(),
            new long[] { rows.GetArrayLength(), 77 });

    internal static string[] Strings(JsonElement array) => array.EnumerateArray().Select(s => s.GetString()!).ToArray();

    internal static ClipTextModel LoadSd1Encoder()
    {
        using var file = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd1.safetensors"));
        return ClipTextModel.Load(file, ModelArchitectures.Sd1.TextEncoders[0].Prefix, new TextEncoderOptions { Heads = Heads("tiny_sd1.config.json", "text_encoder") });
    }

    private static OpenClipTextModel LoadSd2Encoder()
    {
        using var file = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd2v.safetensors"));
        return OpenClipTextModel.Load(file, ModelArchitectures.Sd2.TextEncoders[0].Prefix, new TextEncoderOptions { Heads = Heads("tiny_sd2v.config.json", "text_encoder") });
    }

    private void AssertClose(string goldenFile, string name, Tensor actual, double tolerance = Tolerance)
    {
        using var expected = TextGolden.Read(goldenFile, name);
        var diff = TextGolden.MaxAbsDiff(actual, expected);
        output.WriteLine($"{goldenFile} {name}: max abs diff {diff:E2}");
        Assert.True(diff <= tolerance, $"{name}: max abs diff {diff:E2} > {tolerance:E0}");
    }

    [Fact]
    public void ClipTextModelReproducesEveryHiddenStateOfTinySd1()
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        using var model = LoadSd1Encoder();
        Assert.Equal((32, 2, 2), (model.Width, model.Layers, model.Heads));
        var ids = Ids(TextGolden.Json("tiny_sd1_golden.json").GetProperty("text_input_ids"));
        using var output = model.Encode(ids);
        Assert.Equal(3, output.HiddenStates.Count);
        AssertClose("tiny_sd1_golden.safetensors", "text.last_hidden_state", model.forward(ids));
        AssertClose("tiny_sd1_golden.safetensors", "text.penultimate_hidden_state", output.FromEnd(2));
        AssertClose("tiny_sd1_golden.safetensors", "text.penultimate_final_ln", model.FinalLayerNorm(output.FromEnd(2)));
    }

    [Fact]
    public void Sd1ConditionerFromPromptsMatchesTextAndSamplingGoldens()
    {
        using var scope = NewDisposeScope();
        using var model = LoadSd1Encoder();
        var index = TextGolden.Json("tiny_sd1_golden.json");
        var conditioner = new Sd1TextConditioner(model, new PromptChunker(TextGolden.HfTokenizer));
        using var cond = conditioner.Encode(Strings(index.GetProperty("text_prompts")));
        Assert.Null(cond.Vector);
        AssertClose("tiny_sd1_golden.safetensors", "text.last_hidden_state", cond.CrossAttention);

        var sampling = index.GetProperty("sampling");
        using var positive = conditioner.Encode(new[] { sampling.GetProperty("prompt").GetString()! });
        using var negative = conditioner.Encode(new[] { sampling.GetProperty("negative_prompt").GetString()! }, isNegative: true);
        AssertClose("tiny_sd1_golden.safetensors", "sample.cond", positive.CrossAttention);
        AssertClose("tiny_sd1_golden.safetensors", "sample.uncond", negative.CrossAttention);

        using var skip2 = new Sd1TextConditioner(model, new PromptChunker(TextGolden.HfTokenizer), clipSkip: 2)
            .Encode(Strings(index.GetProperty("text_prompts")));
        AssertClose("tiny_sd1_golden.safetensors", "text.penultimate_final_ln", skip2.CrossAttention);
    }

    [Fact]
    public void PromptTokenizationEqualsTheGoldenInputIds()
    {
        var index = TextGolden.Json("tiny_sd1_golden.json");
        var prompts = Strings(index.GetProperty("text_prompts"));
        var chunker = new PromptChunker(TextGolden.HfTokenizer);
        var expected = index.GetProperty("text_input_ids");
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(expected[i].EnumerateArray().Select(v => v.GetInt32()), Assert.Single(chunker.Chunk(prompts[i]).Chunks).Tokens);
    }

    [Fact]
    public void OpenClipTextModelReproducesTinySd2()
    {
        using var scope = NewDisposeScope();
        using var mode = inference_mode();
        using var model = LoadSd2Encoder();
        Assert.Equal((16, 3, 2), (model.Width, model.Layers, model.Heads));
        var ids = Ids(TextGolden.Json("tiny_sd2v_golden.json").GetProperty("text_input_ids"));
        using var output = model.Encode(ids);
        AssertClose("tiny_sd2v_golden.safetensors", "text.last_hidden_state", model.FinalLayerNorm(output.FromEnd(1)));
        AssertClose("tiny_sd2v_golden.safetensors", "text.penultimate_hidden_state", output.FromEnd(2));
        AssertClose("tiny_sd2v_golden.safetensors", "text.penultimate_final_ln", model.forward(ids));
        AssertClose("tiny_sd2v_golden.safetensors", "text.pooled_projected", model.Pool(output.FromEnd(1), ids));
    }

    [Fact]
    public void Sd2ConditionerPadsWithZeroAndMatchesGoldens()
    {
        using var scope = NewDisposeScope();
        using var model = LoadSd2Encoder();
        var index = TextGolden.Json("tiny_sd2v_golden.json");
        var conditioner = new Sd2TextConditioner(model, new PromptChunker(TextGolden.Tokenizer));
        using var cond = conditioner.Encode(Strings(index.GetProperty("text_prompts")));
        AssertClose("tiny_sd2v_golden.safetensors", "text.penultimate_final_ln", cond.CrossAttention);
        var sampling = index.GetProperty("sampling");
        using var positive = conditioner.Encode(new[] { sampling.GetProperty("prompt").GetString()! });
        using var negative = conditioner.Encode(new[] { sampling.GetProperty("negative_prompt").GetString()! }, isNegative: true);
        AssertClose("tiny_sd2v_golden.safetensors", "sample.cond", positive.CrossAttention);
        AssertClose("tiny_sd2v_golden.safetensors", "sample.uncond", negative.CrossAttention);
    }

    /// <summary>Replaces the tokens of one word by fixed vectors (a stand-in for a textual-inversion embedding).</summary>
    private sealed class WordLookup(IReadOnlyList<int> word, PromptEmbedding embedding) : IPromptEmbeddingLookup
    {
        public (PromptEmbedding Embedding, int TokenLength)? FindAt(IReadOnlyList<int> tokens, int position) =>
            position + word.Count <= tokens.Count && Enumerable.Range(0, word.Count).All(i => tokens[position + i] == word[i])
                ? (embedding, word.Count)
                : null;
    }

    [Fact]
    public void EmbeddingVectorsReplaceTokenEmbeddingsInsideTheEncoder()
    {
        // An "embedding" whose vectors are the token embeddings of "astronaut riding" must reproduce that prompt's conditioning.
        using var scope = NewDisposeScope();
        using var model = LoadSd1Encoder();
        var tokenizer = TextGolden.HfTokenizer;
        var replaced = tokenizer.Encode("astronaut riding").Select(i => (long)i).ToArray();
        Tensor vectors;
        using (inference_mode()) vectors = model.EmbedTokens(tensor(replaced)).clone();
        var lookup = new WordLookup(tokenizer.Encode("kitty"), new PromptEmbedding("kitty", vectors));
        using var viaEmbedding = new Sd1TextConditioner(model, new PromptChunker(tokenizer, embeddings: lookup))
            .Encode(new[] { "a photograph of an kitty a horse" });
        using var plain = new Sd1TextConditioner(model, new PromptChunker(tokenizer))
            .Encode(new[] { "a photograph of an astronaut riding a horse" });
        Assert.True(TextGolden.MaxAbsDiff(viaEmbedding.CrossAttention, plain.CrossAttention) < 1e-6);
        AssertClose("tiny_sd1_golden.safetensors", "sample.cond", viaEmbedding.CrossAttention);
    }

    [Fact]
    public void LoadedEncodersAreInferenceOnly()
    {
        using var model = LoadSd1Encoder();
        Assert.All(model.parameters(), p => Assert.False(p.requires_grad));
        Assert.Equal(
            new[] { "text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight" },
            model.state_dict().Keys.Take(2));
    }

    [Fact]
    public void LoadingTheWrongLayoutIsAClearError()
    {
        using var file = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sd2v.safetensors"));
        var e = Assert.Throws<SharpDiffusion.Formats.InvalidModelFileException>(() => ClipTextModel.Load(file, ModelArchitectures.Sd1.TextEncoders[0].Prefix));
        Assert.Contains("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", e.Message);
    }

    [Fact]
    public void DefaultHeadCountIsWidthOver64()
    {
        Assert.Equal(12, new TextEncoderOptions().HeadsFor(768));
        Assert.Equal(20, new TextEncoderOptions().HeadsFor(1280));
        Assert.Throws<ArgumentException>(() => new TextEncoderOptions().HeadsFor(32));
        Assert.Equal(2, new TextEncoderOptions { Heads = 2 }.HeadsFor(32));
    }
}
