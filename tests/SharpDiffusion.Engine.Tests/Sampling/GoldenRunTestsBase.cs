using SharpDiffusion.Engine.Sampling;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// All 24 golden sampling runs (9 tiny_sd1, 9 tiny_sd2v, 6 tiny_sdxl) through <see cref="GoldenSamplingHarness"/>.
/// A subclass supplies the model: <see cref="ReplayGoldenRunTests"/> replays the goldens; to check the real
/// U-Net, add a subclass whose <see cref="CreateModel"/> loads the U-Net of <c>which.Checkpoint()</c>
/// (tiny_sd1: eps; tiny_sd2v: v-prediction; tiny_sdxl: eps with the [B,120] vector as y).
/// </summary>
public abstract class GoldenRunTestsBase
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

    /// <summary>The U-Net (or stand-in) for one run of <paramref name="which"/>'s goldens.</summary>
    protected abstract IDiffusionModel CreateModel(GoldenModel which, string run);

    /// <summary>Extra checks on the model after the run.</summary>
    protected virtual void AfterRun(IDiffusionModel model)
    {
    }

    [Theory]
    [MemberData(nameof(AllRuns))]
    public void RunReproducesEveryGoldenStep(GoldenModel which, string run)
    {
        var model = CreateModel(which, run);
        try
        {
            GoldenSamplingHarness.RunAndAssert(model, which, run);
            AfterRun(model);
        }
        finally
        {
            (model as IDisposable)?.Dispose();
        }
    }
}
