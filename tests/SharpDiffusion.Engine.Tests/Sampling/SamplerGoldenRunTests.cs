namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// Every golden sampling run through the whole sampling path (noise, denoiser, CFG, sampler) with
/// <see cref="GoldenReplayModel"/> standing in for the U-Net. With the real tiny U-Nets the same harness call is
/// <c>GoldenSamplingHarness.RunAndAssert(unetOf(which), which, run)</c>.
/// </summary>
public class SamplerGoldenRunTests
{
    public static TheoryData<GoldenModel, string> AllRuns()
    {
        var data = new TheoryData<GoldenModel, string>();
        foreach (var which in Enum.GetValues<GoldenModel>())
        {
            foreach (var run in which.Runs()) data.Add(which, run);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(AllRuns))]
    public void ReplayedRunReproducesEveryStep(GoldenModel which, string run)
    {
        using var model = new GoldenReplayModel(which, run);
        GoldenSamplingHarness.RunAndAssert(model, which, run);
        Assert.Equal(model.ExpectedCalls, model.Calls);
    }
}
