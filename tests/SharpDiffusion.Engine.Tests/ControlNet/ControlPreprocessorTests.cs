using SharpDiffusion.Engine.ControlNet;
using SharpDiffusion.Engine.Upscaling;

namespace SharpDiffusion.Engine.Tests.ControlNet;

/// <summary>
/// Canny on step images whose edge maps follow from OpenCV's rules: for a step between columns 5 and 6 both columns
/// get |dx| = 4·contrast, and OpenCV's non-maximum test (m &gt; left, m ≥ right) keeps column 5, the first of the two.
/// </summary>
public class ControlPreprocessorTests
{
    private const int Size = 12;

    private static RgbImage Step(bool vertical, byte before, byte after, int channel = -1)
    {
        var image = new RgbImage(Size, Size);
        for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
                for (int c = 0; c < 3; c++)
                {
                    bool second = vertical ? x >= 6 : y >= 6;
                    image.Pixels[(y * Size + x) * 3 + c] = channel >= 0 && c != channel ? (byte)0 : second ? after : before;
                }
        return image;
    }

    private static byte[] Line(bool column, int index)
    {
        var map = new byte[Size * Size];
        for (int i = 0; i < Size; i++) map[column ? i * Size + index : index * Size + i] = 255;
        return map;
    }

    [Theory]
    [InlineData(0, 255)]
    [InlineData(255, 0)]
    [InlineData(0, 60)]
    public void StepEdgesSitOnTheFirstOfTheTwoGradientPixels(byte before, byte after)
    {
        Assert.Equal(Line(column: true, 5), ControlPreprocessors.Canny(Step(vertical: true, before, after), 100, 200));
        Assert.Equal(Line(column: false, 5), ControlPreprocessors.Canny(Step(vertical: false, before, after), 100, 200));
    }

    [Fact]
    public void ThresholdsAndChannels()
    {
        // Contrast 20: |dx| = 80, not above low. Contrast 40: 160, a candidate but never above high: no edge.
        Assert.All(ControlPreprocessors.Canny(Step(true, 0, 20), 100, 200), v => Assert.Equal(0, v));
        Assert.All(ControlPreprocessors.Canny(Step(true, 0, 40), 100, 200), v => Assert.Equal(0, v));
        // With high below 160 the same step is an edge; swapped thresholds are reordered as OpenCV does.
        Assert.Equal(Line(true, 5), ControlPreprocessors.Canny(Step(true, 0, 40), 150, 100));
        // Only the green channel steps: the largest channel gradient decides.
        Assert.Equal(Line(true, 5), ControlPreprocessors.Canny(Step(true, 0, 255, channel: 1), 100, 200));
    }

    [Fact]
    public void CannyRunsAtTheResolutionAndGivesAThreeChannelMapTheHintScalesToOne()
    {
        // At resolution 12 the 12x12 image keeps its size (padded to 64 by repeating its edge for Canny, then cut).
        var map = ControlPreprocessors.Apply("canny", Step(true, 0, 255), resolution: Size);
        Assert.Equal((Size, Size), (map.Width, map.Height));
        for (int c = 0; c < 3; c++) Assert.Equal(Line(true, 5), Enumerable.Range(0, Size * Size).Select(i => map.Pixels[i * 3 + c]).ToArray());
        // The extension's default resolution: the short side becomes 512, the map keeps that size.
        var large = ControlPreprocessors.Apply("canny", new RgbImage(24, 12));
        Assert.Equal((1024, 512), (large.Width, large.Height));
        var hint = ControlUnit.FromMap("net.safetensors", map).Hint; // [3, H, W] planes
        Assert.Equal(3 * Size * Size, hint.Length);
        Assert.Equal(1f, hint[Size * Size + 3 * Size + 5]);
        Assert.Equal(0f, hint[Size * Size + 3 * Size + 6]);
        Assert.Equal(255 - 7, ControlPreprocessors.Apply("invert", new RgbImage(1, 1, new byte[] { 7, 7, 7 })).Pixels[0]);
        Assert.Throws<ArgumentException>(() => ControlPreprocessors.Apply("depth", map));
    }
}
