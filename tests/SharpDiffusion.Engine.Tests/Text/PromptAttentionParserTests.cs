using System.Text.Json;
using SharpDiffusion.Engine.Text.Prompts;

namespace SharpDiffusion.Engine.Tests.Text;

public class PromptAttentionParserTests
{
    private static readonly JsonElement Cases = TextGolden.Json("a1111/prompt_attention_cases.json").GetProperty("cases");

    public static TheoryData<int> CaseIndices()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Cases.GetArrayLength(); i++) data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void EveryA1111CaseParsesIdentically(int index)
    {
        var c = Cases[index];
        var expected = c.GetProperty("parsed").EnumerateArray()
            .Select(p => new WeightedText(p[0].GetString()!, p[1].GetDouble()))
            .ToList();
        var actual = PromptAttentionParser.Parse(c.GetProperty("text").GetString()!);
        Assert.Equal(expected, actual); // doubles compared exactly: same multiplication order as Python
    }

    [Fact]
    public void OnlyTheBarePairIsABreak()
    {
        var parsed = PromptAttentionParser.Parse("a BREAK (b BREAK c)");
        // a, BREAK, "", b, BREAK×1.1, c
        Assert.Equal(6, parsed.Count);
        Assert.True(parsed[1].IsBreak);
        Assert.Equal("BREAK", parsed[4].Text);
        Assert.Equal(-1.1, parsed[4].Weight);
        Assert.False(parsed[4].IsBreak);
    }

    [Fact]
    public void MalformedWeightIsAClearError()
    {
        var e = Assert.Throws<FormatException>(() => PromptAttentionParser.Parse("(a:1.2.3)"));
        Assert.Contains("1.2.3", e.Message);
    }
}
