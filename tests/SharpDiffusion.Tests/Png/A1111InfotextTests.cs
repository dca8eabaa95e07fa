using SharpDiffusion.Png;

namespace SharpDiffusion.Tests.Png;

public class A1111InfotextTests
{
    /// <summary>The example in A1111's parse_generation_parameters docstring.</summary>
    private const string DocstringExample =
        "girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy makeup, by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate\n" +
        "Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, poorly drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing\n" +
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b";

    [Fact]
    public void ParsesTheDocstringExample()
    {
        var info = A1111Infotext.Parse(DocstringExample);

        Assert.StartsWith("girl with an artist's beret, determined", info.Prompt);
        Assert.EndsWith("detailed, intricate", info.Prompt);
        Assert.StartsWith("ugly, fat, obese", info.NegativePrompt);
        Assert.Equal(20, info.Steps);
        Assert.Equal("Euler a", info.Sampler);
        Assert.Equal(7.0, info.CfgScale);
        Assert.Equal(965400086L, info.Seed);
        Assert.Equal((512, 512), info.Size);
        Assert.Equal("45dee52b", info.ModelHash);
        Assert.Equal(1, info.ClipSkip);
        Assert.Equal("Automatic", info.ScheduleType);
        Assert.Equal(DocstringExample, info.Format());
    }

    [Fact]
    public void ParsesAModernInfotextWithQuotedValues()
    {
        const string text =
            "masterpiece, best quality, 1girl, <lora:add_detail:0.6>\n" +
            "Negative prompt: lowres, bad anatomy, easynegative\n" +
            "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 1234567890, Size: 512x768, Model hash: 6ce0161689, " +
            "Model: v1-5-pruned-emaonly, Denoising strength: 0.45, Clip skip: 2, Hires upscale: 2, Hires upscaler: Latent, " +
            "Lora hashes: \"add_detail: 7c6bad76eb54\", TI hashes: \"easynegative: c74b4e810b03, other: 0123456789ab\", Version: v1.10.1";

        var info = A1111Infotext.Parse(text);

        Assert.Equal("masterpiece, best quality, 1girl, <lora:add_detail:0.6>", info.Prompt);
        Assert.Equal("lowres, bad anatomy, easynegative", info.NegativePrompt);
        Assert.Equal("Karras", info.ScheduleType);
        Assert.Equal(6.5, info.CfgScale);
        Assert.Equal((512, 768), info.Size);
        Assert.Equal(2, info.ClipSkip);
        Assert.Equal("v1-5-pruned-emaonly", info.Model);
        Assert.Equal("add_detail: 7c6bad76eb54", info["Lora hashes"]);
        Assert.Equal("easynegative: c74b4e810b03, other: 0123456789ab", info["TI hashes"]);
        Assert.Equal("v1.10.1", info.Version);
        Assert.Equal(15, info.Parameters.Count);
        Assert.Equal(text, info.Format());
    }

    [Fact]
    public void FormatsTxt2ImgParametersInA1111Order()
    {
        var info = A1111Infotext.ForTxt2Img("a photograph of an astronaut riding a horse", "blurry", 20, "Euler a", "Automatic", 7, 42, 512, 512,
            modelHash: "6ce0161689", model: "v1-5-pruned-emaonly", clipSkip: 2, version: "v1.10.1");

        Assert.Equal(
            "a photograph of an astronaut riding a horse\n" +
            "Negative prompt: blurry\n" +
            "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Clip skip: 2, Version: v1.10.1",
            info.Format());
    }

    [Fact]
    public void EmptyNegativePromptAndDefaultClipSkipAreLeftOut()
    {
        var info = A1111Infotext.ForTxt2Img("cat", "", 8, "DPM++ 2M", "Karras", 7.5, 1, 640, 512);

        Assert.Equal("cat\nSteps: 8, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 1, Size: 640x512", info.Format());
    }

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("a, b", "\"a, b\"")]
    [InlineData("key: value", "\"key: value\"")]
    [InlineData("two\nlines", "\"two\\nlines\"")]
    [InlineData("say \"hi\", ok", "\"say \\\"hi\\\", ok\"")]
    [InlineData("back\\slash, x", "\"back\\\\slash, x\"")]
    [InlineData("café, 東京", "\"café, 東京\"")]
    [InlineData("quote \" alone", "quote \" alone")]
    public void QuotesLikeA1111(string value, string expected)
    {
        Assert.Equal(expected, A1111Infotext.Quote(value));
        Assert.Equal(value, A1111Infotext.Unquote(A1111Infotext.Quote(value)));
    }

    [Fact]
    public void QuotedValuesSurviveARoundTrip()
    {
        var info = A1111Infotext.ForTxt2Img("line one\nline two, with comma", "bad: hands\nworse", 30, "Euler", "Automatic", 5, 7, 768, 768,
            model: "my, odd: \"model\"");
        info["Lora hashes"] = "a: 1, b: 2";
        info["Tiling"] = "Tiling";

        var parsed = A1111Infotext.Parse(info.Format());

        Assert.Equal(info.Prompt, parsed.Prompt);
        Assert.Equal(info.NegativePrompt, parsed.NegativePrompt);
        Assert.Equal(info.Parameters.Where(p => p.Key != "Tiling"), parsed.Parameters);
        Assert.Contains(", Tiling", info.Format());
    }

    [Fact]
    public void LastLineWithFewerThanThreeParametersIsPartOfThePrompt()
    {
        var info = A1111Infotext.Parse("a cat\nSteps: 20, Sampler: Euler");

        Assert.Equal("a cat\nSteps: 20, Sampler: Euler", info.Prompt);
        Assert.Empty(info.Parameters);
    }

    [Fact]
    public void EmptyValuesAreDroppedAsA1111Does()
    {
        var info = A1111Infotext.Parse("x\nSteps: 20, Model: , Seed: 1, Sampler: Euler");

        Assert.Null(info.Model);
        Assert.Equal(["Steps", "Seed", "Sampler"], info.Parameters.Select(p => p.Key));
    }

    [Fact]
    public void NegativePromptContinuesOverFollowingLines()
    {
        var info = A1111Infotext.Parse("  prompt\nNegative prompt:   first\nsecond\nSteps: 1, Sampler: Euler, Seed: 3\n");

        Assert.Equal("prompt", info.Prompt);
        Assert.Equal("first\nsecond", info.NegativePrompt);
        Assert.Equal(3L, info.Seed);
    }
}
