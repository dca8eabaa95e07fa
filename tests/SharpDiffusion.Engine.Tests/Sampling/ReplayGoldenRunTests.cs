using SharpDiffusion.Engine.Sampling;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>The golden runs with <see cref="GoldenReplayModel"/> standing in for the U-Net.</summary>
public class ReplayGoldenRunTests : GoldenRunTestsBase
{
    protected override IDiffusionModel CreateModel(GoldenModel which, string run) => new GoldenReplayModel(which, run);

    protected override void AfterRun(IDiffusionModel model)
    {
        var replay = (GoldenReplayModel)model;
        Assert.Equal(replay.ExpectedCalls, replay.Calls);
    }
}
