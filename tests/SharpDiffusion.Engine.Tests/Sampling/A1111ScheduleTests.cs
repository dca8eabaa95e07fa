using SharpDiffusion.Engine.Sampling;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>Every A1111 1.10 schedule type against samplers/schedules.* (samplers README §3), for 8, 10 and 20 steps.</summary>
public class A1111ScheduleTests
{
    private static readonly DiscreteSchedule Sd = DiscreteSchedule.ScaledLinear();

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var type in new[] { "uniform", "exponential", "polyexponential", "sgm_uniform", "kl_optimal", "align_your_steps", "align_your_steps_sdxl", "simple", "normal", "ddim", "beta" })
        {
            foreach (int steps in new[] { 8, 10, 20 }) data.Add(type, steps);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ScheduleMatchesA1111(string name, int steps)
    {
        using var g = GoldenTensors.Open("samplers/schedules.safetensors");
        bool sdxl = name == "align_your_steps_sdxl";
        var type = ScheduleTypes.Parse(sdxl ? "align_your_steps" : name)!.Value;
        var expected = g.Doubles($"schedule.{name}_{steps}");
        var actual = Sd.GetSigmas(steps, type, sdxl);
        // README §6: rel 1e-5. Not bit for bit: torch evaluates exp/log with MKL's vector math (HA, ~1 ulp), which
        // sometimes rounds the other way; tables read straight from the model (Simple, DDIM) are exact.
        TensorAssert.Relative(expected, actual, 1e-5, $"{name}_{steps}");
        if (name is "simple" or "ddim") Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(10)]
    [InlineData(20)]
    public void BetaQuantilesMatchScipy(int steps)
    {
        using var g = GoldenTensors.Open("samplers/schedules.safetensors");
        TensorAssert.Relative(g.Float64s($"schedule.beta_ppf_{steps}"), DiscreteSchedule.BetaQuantiles(steps), 1e-12, $"beta_ppf_{steps}");
    }

    [Fact]
    public void SpecialShapesOfTheSchedules()
    {
        var kl = Sd.GetSigmas(8, ScheduleType.KlOptimal);
        Assert.Equal(9, kl.Length);
        Assert.Equal(Sd.SigmaMin, kl[^1], 6);
        Assert.Equal(13, Sd.GetSigmas(11, ScheduleType.Ddim).Length);
        Assert.Equal(14.615f, (float)Sd.GetSigmas(11, ScheduleType.AlignYourSteps)[0]);
        Assert.Equal(0.113f, (float)Sd.GetSigmas(11, ScheduleType.AlignYourSteps, sdxl: true)[^3]);
    }

    [Theory]
    [InlineData("Euler", null, "Automatic")]
    [InlineData("DPM++ SDE", null, "Karras")]
    [InlineData("DPM++ 2M SDE", null, "Exponential")]
    [InlineData("DPM++ 3M SDE", null, "Exponential")]
    [InlineData("DPM++ 2M Karras", null, "Karras")]
    [InlineData("Euler", "Beta", "Beta")]
    [InlineData("DPM++ 2M", "align_your_steps", "Align Your Steps")]
    public void InfotextScheduleLabelIsA1111s(string sampler, string? requested, string label)
    {
        var type = requested is null ? null : ScheduleTypes.Parse(requested);
        Assert.Equal(label, SamplerRegistry.ScheduleLabel(sampler, type));
    }
}
