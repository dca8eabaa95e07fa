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
    [InlineData("DPM++ SDE", "dpmpp_sde", typeof(DpmPlusPlusSdeSampler))]
    [InlineData("DPM++ 2M SDE", "dpmpp_2m_sde", typeof(DpmPlusPlus2MSdeSampler))]
    [InlineData("DPM++ 2M SDE Heun", "dpmpp_2m_sde_heun", typeof(DpmPlusPlus2MSdeSampler))]
    [InlineData("DPM++ 3M SDE", "dpmpp_3m_sde", typeof(DpmPlusPlus3MSdeSampler))]
    [InlineData("DPM fast", "dpm_fast", typeof(DpmFastSampler))]
    [InlineData("DPM adaptive", "dpm_adaptive", typeof(DpmAdaptiveSampler))]
    [InlineData("Restart", "restart", typeof(RestartSampler))]
    [InlineData("DDIM CFG++", "ddim_cfgpp", typeof(DdimCfgPlusPlusSampler))]
    [InlineData("PLMS", "plms", typeof(PlmsSampler))]
    [InlineData("UniPC", "unipc", typeof(UniPcSampler))]
    [InlineData("LCM", "lcm", typeof(LcmSampler))]
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
    public void A1111sTwentySamplersInItsOrder()
    {
        Assert.Equal(new[]
        {
            "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE", "Euler a", "Euler", "LMS", "Heun",
            "DPM2", "DPM2 a", "DPM fast", "DPM adaptive", "Restart", "DDIM", "DDIM CFG++", "PLMS", "UniPC", "LCM",
        }, SamplerRegistry.Names);
    }

    [Fact]
    public void AutomaticScheduleAndDiscardAreA1111sPerSampler()
    {
        var sd = DiscreteSchedule.ScaledLinear();
        Assert.Equal(sd.GetSigmas(8, ScheduleType.Karras), SamplerRegistry.Create("DPM++ SDE").Sigmas(sd, 8, null));
        Assert.Equal(sd.GetSigmas(8, ScheduleType.Exponential), SamplerRegistry.Create("DPM++ 2M SDE").Sigmas(sd, 8, null));
        var nine = sd.GetSigmas(9, ScheduleType.Exponential);
        Assert.Equal(nine.Take(8).Append(0.0), SamplerRegistry.Create("DPM++ 3M SDE").Sigmas(sd, 8, null));
        Assert.Equal(sd.GetSigmas(8, ScheduleType.Uniform), SamplerRegistry.Create("DPM++ 3M SDE", a1111SigmaQuirks: false).Sigmas(sd, 8, null));
        Assert.Equal(sd.GetSigmas(8, ScheduleType.Uniform), SamplerRegistry.Create("Euler").Sigmas(sd, 8, null));
        // Timestep samplers stop one step early: 8 timesteps, 7 steps, ending at timestep 1.
        var plms = SamplerRegistry.Create("PLMS").Sigmas(sd, 8, ScheduleType.Karras);
        Assert.Equal(new[] { 876, 751, 626, 501, 376, 251, 126, 1 }, plms.Select(sd.TimestepOfSigma).ToArray());
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
