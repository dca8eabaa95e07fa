using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Text.Prompts;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Text;

/// <summary>
/// A1111's <c>FrozenCLIPEmbedderWithCustomWords</c> outputs (emphasis, chunks, BREAK, comma back-tracking, CLIP skip)
/// on tiny_sd1. Tolerances from a1111/README.md §6: 1e-4 without emphasis, 2e-3 with the ill-conditioned mean restoration.
/// </summary>
public class A1111ConditioningGoldenTests(ITestOutputHelper output)
{
    private const string Golden = "a1111/conditioning.safetensors";

    private static readonly Lazy<SharpDiffusion.Engine.Text.Encoders.ClipTextModel> Encoder = new(TextEncoderGoldenTests.LoadSd1Encoder);

    private static Tensor Encode(string caseName, EmphasisMode mode)
    {
        var c = PromptChunkerTests.Case(caseName);
        var conditioner = new Sd1TextConditioner(Encoder.Value, new PromptChunker(TextGolden.HfTokenizer, mode), c.GetProperty("clip_skip").GetInt32());
        return conditioner.Encode(PromptChunkerTests.Texts(c)).CrossAttention;
    }

    private static bool AllFactorsOne(string caseName) =>
        PromptChunkerTests.Case(caseName).GetProperty("mean_restoration").EnumerateArray().All(m => m.GetProperty("factor").GetDouble() == 1.0);

    [Theory]
    [MemberData(nameof(PromptChunkerTests.CaseNames), MemberType = typeof(PromptChunkerTests))]
    public void RawEncoderOutputMatches(string caseName)
    {
        using var actual = Encode(caseName, EmphasisMode.Ignore);
        using var expected = TextGolden.Read(Golden, caseName + ".cond_raw");
        var diff = TextGolden.MaxAbsDiff(actual, expected);
        output.WriteLine($"{caseName}.cond_raw: max abs diff {diff:E2}");
        Assert.True(diff <= 1e-4);
    }

    [Theory]
    [MemberData(nameof(PromptChunkerTests.CaseNames), MemberType = typeof(PromptChunkerTests))]
    public void ConditioningWithEmphasisMatches(string caseName)
    {
        using var actual = Encode(caseName, EmphasisMode.Original);
        using var expected = TextGolden.Read(Golden, caseName + ".cond");
        double tolerance = AllFactorsOne(caseName) ? 1e-4 : 2e-3;
        var diff = TextGolden.MaxAbsDiff(actual, expected);
        output.WriteLine($"{caseName}.cond: max abs diff {diff:E2}");
        Assert.True(diff <= tolerance, $"{caseName}: max abs diff {diff:E2} > {tolerance:E0}");
    }

    [Theory]
    [InlineData(EmphasisMode.Ignore, "Ignore", 1e-4)]
    [InlineData(EmphasisMode.NoNorm, "No_norm", 1e-4)]
    [InlineData(EmphasisMode.None, "None", 1e-4)]
    public void EmphasisVariantsMatch(EmphasisMode mode, string variant, double tolerance)
    {
        using var actual = Encode("emphasis", mode);
        using var expected = TextGolden.Read(Golden, "emphasis.variant." + variant);
        var diff = TextGolden.MaxAbsDiff(actual, expected);
        output.WriteLine($"emphasis.variant.{variant}: max abs diff {diff:E2}");
        Assert.True(diff <= tolerance);
    }

    [Fact]
    public void MeanRestorationArithmeticIsA1111s()
    {
        // From the stored raw output, the engine's emphasis step gives A1111's factor and output (README §2, §6).
        foreach (var c in PromptChunkerTests.Names())
        {
            using var scope = NewDisposeScope();
            var raw = TextGolden.Read(Golden, c + ".cond_raw");
            var expected = TextGolden.Read(Golden, c + ".cond");
            var multipliers = TextGolden.Read(Golden, c + ".multipliers").to(ScalarType.Float32); // [B, k, 77]
            var factors = PromptChunkerTests.Case(c).GetProperty("mean_restoration").EnumerateArray().Select(m => m.GetProperty("factor").GetDouble()).ToArray();
            for (int k = 0; k < factors.Length; k++)
            {
                var z = raw.narrow(1, 77 * k, 77);
                var m = multipliers.select(1, k);
                var weighted = z * m.unsqueeze(-1);
                double factor = z.to(ScalarType.Float64).mean().item<double>() / weighted.to(ScalarType.Float64).mean().item<double>();
                output.WriteLine($"{c} chunk {k}: factor {factor:R} (stored {factors[k]:R}, relative {Math.Abs(factor / factors[k] - 1):E1})");
                Assert.True(Math.Abs(factor / factors[k] - 1) <= 1e-3, $"{c} chunk {k}: factor {factor} vs {factors[k]}");
                var viaStoredFactor = weighted * (float)factors[k];
                Assert.Equal(0.0, TextGolden.MaxAbsDiff(viaStoredFactor, expected.narrow(1, 77 * k, 77)));
                var engine = PromptEmphasis.Apply(z, m, EmphasisMode.Original);
                Assert.True(TextGolden.MaxAbsDiff(engine, expected.narrow(1, 77 * k, 77)) <= 2e-3);
            }
        }
    }
}
