using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Sampling.Samplers;

namespace SharpDiffusion.Engine.Tests.Sampling;

public class SamplerRegistryTests
{
    [Theory]
    [InlineData("Euler", "euler", typeof(EulerSampler))]
    [InlineData("Euler a", "euler_ancestral", typeof(EulerAncestralSampler))]
    [InlineData("Heun", "heun", typeof(HeunSampler))]
    [InlineData("DPM2", "dpm_2", typeof(Dpm2Sampler))]
    [InlineData("DPM2 a", "dpm_2_ancestral", typeof(Dpm2AncestralSampler))]
    [InlineData("LMS", "lms", typeof(LmsSampler))]
    [InlineData("DPM++ 2M", "dpmpp_2m", typeof(DpmPlusPlus2MSampler))]
    [InlineData("DPM++ 2S a", "dpmpp_2s_ancestral", typeof(DpmPlusPlus2SAncestralSampler))]
    [InlineData("DDIM", "ddim", typeof(DdimSampler))]
    public void DisplayNamesAndAliasesFindTheSameSampler(string display, string alias, Type type)
    {
        Assert.IsType(type, SamplerRegistry.Create(display));
        Assert.IsType(type, SamplerRegistry.Create(alias));
        Assert.IsType(type, SamplerRegistry.Create(display.ToLowerInvariant()));
        var sampler = SamplerRegistry.Create(alias);
        Assert.Equal(display, sampler.Name);
        Assert.Equal(alias, sampler.Alias);
    }

    [Fact]
    public void KarrasSuffixSelectsTheKarrasSchedule()
    {
        var (sampler, schedule) = SamplerRegistry.Resolve("DPM++ 2M Karras");
        Assert.IsType<DpmPlusPlus2MSampler>(sampler);
        Assert.Equal(ScheduleType.Karras, schedule);
        Assert.Equal(ScheduleType.Karras, SamplerRegistry.Resolve("euler_ancestral_karras").Schedule);
        Assert.Null(SamplerRegistry.Resolve("Euler a").Schedule);
    }

    [Fact]
    public void UnknownNameListsTheValidNames()
    {
        var e = Assert.Throws<ArgumentException>(() => SamplerRegistry.Create("Euler b"));
        Assert.Contains("unknown sampler 'Euler b'", e.Message);
        foreach (var name in SamplerRegistry.Names) Assert.Contains('"' + name + '"', e.Message);
        Assert.Contains("dpmpp_2s_ancestral", e.Message);
        Assert.Throws<ArgumentException>(() => SamplerRegistry.Create("DDIM Karras"));
        Assert.Throws<ArgumentException>(() => ScheduleTypes.Parse("cosine"));
        Assert.Null(ScheduleTypes.Parse("Automatic"));
        Assert.Equal(ScheduleType.SgmUniform, ScheduleTypes.Parse("SGM Uniform"));
        Assert.Equal(ScheduleType.SgmUniform, ScheduleTypes.Parse("sgm_uniform"));
        Assert.Equal(ScheduleType.AlignYourSteps, ScheduleTypes.Parse("align your steps"));
    }
}
