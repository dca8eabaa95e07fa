using System.Text.Json;
using SharpDiffusion.Engine.Text.Tokenization;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Text;

/// <summary>Shared access to the golden files used by the text tests (vocabulary loaded once).</summary>
internal static class TextGolden
{
    private static readonly Lazy<BytePairVocabulary> HfVocabulary = new(() =>
        BytePairVocabulary.FromHuggingFace(TestPaths.GoldenFile("clip/vocab.json"), TestPaths.GoldenFile("clip/merges.txt")));

    private static readonly Lazy<BytePairVocabulary> OpenAiVocabulary = new(() =>
        BytePairVocabulary.FromOpenAi(TestPaths.GoldenFile("clip/bpe_simple_vocab_16e6.txt.gz")));

    public static BytePairVocabulary Vocabulary => HfVocabulary.Value;
    public static BytePairVocabulary OpenAi => OpenAiVocabulary.Value;

    /// <summary>openai's tokenizer (html-unescapes).</summary>
    public static ClipTokenizer Tokenizer { get; } = new(HfVocabulary.Value);

    /// <summary>transformers' CLIPTokenizer, which A1111 uses (no html unescaping).</summary>
    public static ClipTokenizer HfTokenizer { get; } = new(HfVocabulary.Value, htmlUnescape: false);

    public static JsonElement Json(string relative) => JsonDocument.Parse(File.ReadAllText(TestPaths.GoldenFile(relative))).RootElement;

    /// <summary>Reads one tensor of a golden safetensors file (float32 unless stored otherwise).</summary>
    public static Tensor Read(string relative, string name)
    {
        using var file = SafetensorsFile.Open(TestPaths.GoldenFile(relative));
        var info = file.Tensors.Single(t => t.Name == name);
        return TensorReading.Read(file, info);
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(b.shape, a.shape);
        using var d = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max();
        return d.item<double>();
    }
}
