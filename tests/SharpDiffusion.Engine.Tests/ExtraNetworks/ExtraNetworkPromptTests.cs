using SharpDiffusion.Engine.ExtraNetworks;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

public sealed class ExtraNetworkPromptTests
{
    [Fact]
    public void RemovesTagsAndKeepsTheirArguments()
    {
        var p = ExtraNetworkPrompt.Extract("a portrait, <lora:detail:0.8>, <hypernet:anime:0.6>, <lyco:style:0.5:0.25>, easynegative");
        Assert.Equal("a portrait, , , , easynegative", p.Prompt);
        Assert.Equal(2, p.Loras.Count);
        Assert.Equal(("lora", "detail", 0.8, 0.8), (p.Loras[0].Kind, p.Loras[0].Name, p.Loras[0].TextEncoderStrength, p.Loras[0].UnetStrength));
        Assert.Equal(("lyco", "style", 0.5, 0.25), (p.Loras[1].Kind, p.Loras[1].Name, p.Loras[1].TextEncoderStrength, p.Loras[1].UnetStrength));
        Assert.Equal(new HypernetworkTag("anime", 0.6), Assert.Single(p.Hypernetworks));
        Assert.Empty(p.Warnings);
    }

    [Fact]
    public void DefaultsAndNamedArguments()
    {
        var p = ExtraNetworkPrompt.Extract("<lora:a><lora:b:unet=0.3><hypernet:h>x");
        Assert.Equal("x", p.Prompt);
        Assert.Equal((1.0, 1.0), (p.Loras[0].TextEncoderStrength, p.Loras[0].UnetStrength));
        Assert.Equal((1.0, 0.3), (p.Loras[1].TextEncoderStrength, p.Loras[1].UnetStrength));
        Assert.Equal(1.0, p.Hypernetworks[0].Strength);
    }

    [Fact]
    public void UnknownKindsAreRemovedWithAWarningAndBadNumbersAreIgnored()
    {
        var p = ExtraNetworkPrompt.Extract("cat <foo:bar> <lora:x:abc> <hypernet:y:zz> <not a tag> <:x>");
        Assert.Equal("cat    <not a tag> <:x>", p.Prompt);
        Assert.Empty(p.Loras);
        Assert.Empty(p.Hypernetworks);
        Assert.Equal(3, p.Warnings.Count);
        Assert.Contains("<foo:bar>", p.Warnings[0]);
    }
}
