using SharpDiffusion.Engine.Training;
using SkiaSharp;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>Learning-rate schedules (diffusers' get_scheduler lambdas, A1111's rate list), kohya's buckets, captions and folders.</summary>
public class ScheduleAndDataTests
{
    [Fact]
    public void DiffusersSchedulesFollowTheirLambdas()
    {
        const double lr = 1e-3;
        var linear = LearningRateSchedule.Create("linear", lr, 100, warmupSteps: 10);
        Assert.Equal(0.0, linear.At(0));
        Assert.Equal(lr * 5 / 10, linear.At(5), 12);
        Assert.Equal(lr * (100 - 40) / 90.0, linear.At(40), 12);
        Assert.Equal(0.0, linear.At(100));
        var cosine = LearningRateSchedule.Create("cosine", lr, 100, warmupSteps: 0);
        Assert.Equal(lr, cosine.At(0), 12);
        Assert.Equal(lr * 0.5 * (1 + Math.Cos(Math.PI * 0.25)), cosine.At(25), 12);
        Assert.Equal(lr * 0.5, cosine.At(50), 12);
        var restarts = LearningRateSchedule.Create("cosine_with_restarts", lr, 100, cycles: 2);
        Assert.Equal(lr, restarts.At(50), 12); // second cycle starts again at the full rate
        Assert.Equal(lr * 0.5 * (1 + Math.Cos(Math.PI * (2 * 0.3 % 1.0))), restarts.At(30), 12);
        var warm = LearningRateSchedule.Create("constant_with_warmup", lr, 100, warmupSteps: 4);
        Assert.Equal(lr * 0.25, warm.At(1), 12);
        Assert.Equal(lr, warm.At(4), 12);
        Assert.Equal(lr, LearningRateSchedule.Create("constant", lr, 100).At(77));
    }

    [Fact]
    public void A1111RateListHoldsEachRateThroughItsEndStep()
    {
        var s = LearningRateSchedule.Create("0.005:100, 1e-3:1000, 1e-5", 1e-4, 5000);
        Assert.Equal(0.005, s.At(0));
        Assert.Equal(0.005, s.At(100));
        Assert.Equal(1e-3, s.At(101));
        Assert.Equal(1e-3, s.At(1000));
        Assert.Equal(1e-5, s.At(1001));
        Assert.Equal(1e-5, s.At(4999));
        Assert.Equal(0.02, LearningRateSchedule.Create("0.02", 1e-4, 10).At(3));
        var e = Assert.Throws<FormatException>(() => LearningRateSchedule.Create("0.005:abc", 1e-4, 10));
        Assert.Contains("0.005:abc", e.Message);
        Assert.Throws<FormatException>(() => LearningRateSchedule.Create("fast", 1e-4, 10));
    }

    [Fact]
    public void BucketsAreKohyasAreaPreservingSet()
    {
        var b = new AspectRatioBuckets(512, 64, 256, 1024);
        // make_bucket_resolutions((512, 512), 256, 1024, 64): widths 256..1024 with height (262144 // w) // 64 * 64.
        Assert.Contains((512, 512), b.Resolutions);
        Assert.Contains((256, 1024), b.Resolutions);
        Assert.Contains((1024, 256), b.Resolutions);
        Assert.Contains((576, 448), b.Resolutions);
        Assert.Contains((448, 576), b.Resolutions);
        Assert.Contains((640, 384), b.Resolutions);
        Assert.All(b.Resolutions, r => Assert.True(r.Width * r.Height <= 512 * 512 && r.Width % 64 == 0 && r.Height % 64 == 0));
        Assert.Equal(b.Resolutions.Count, b.Resolutions.Distinct().Count());
        Assert.Equal((512, 512), b.Select(1000, 1000));
        Assert.Equal((640, 384), b.Select(768, 512)); // 1.5: |1.667 - 1.5| < |1.286 - 1.5|
        Assert.Equal((256, 1024), b.Select(100, 1000));
    }

    [Fact]
    public void CaptionsKeepLeadingTagsShuffleTheRestAndDropOut()
    {
        var options = new CaptionOptions { Shuffle = true, KeepTokens = 1 };
        const string caption = "sks dog, red collar, grass, sunny day, park";
        var a = CaptionProcessing.Process(caption, options, new StepRandom(1, "batch", 7));
        var b = CaptionProcessing.Process(caption, options, new StepRandom(1, "batch", 7));
        Assert.Equal(a, b); // a function of (seed, step)
        Assert.StartsWith("sks dog, ", a);
        Assert.Equal(caption.Split(", ").Order(), a.Split(", ").Order());
        var shuffled = Enumerable.Range(0, 20).Select(i => CaptionProcessing.Process(caption, options, new StepRandom(1, "batch", i))).Distinct().Count();
        Assert.True(shuffled > 5, $"only {shuffled} distinct orders in 20 steps");
        Assert.Equal("", CaptionProcessing.Process(caption, new CaptionOptions { CaptionDropoutRate = 1.0 }, new StepRandom(1, "b", 0)));
        Assert.Equal("sks dog", CaptionProcessing.Process(caption, new CaptionOptions { KeepTokens = 1, TagDropoutRate = 1.0 }, new StepRandom(1, "b", 0)));
        Assert.Equal(caption, CaptionProcessing.Process(caption, new CaptionOptions(), new StepRandom(1, "b", 0)));
    }

    /// <summary>Two captioned 16x16 images in one concept folder: the data set of the template-training tests.</summary>
    internal static string WriteTemplateData(TempDir dir)
    {
        Directory.CreateDirectory(dir.File("data/1_toy"));
        WriteImage(dir.File("data/1_toy/a.png"), 16, 16, new SKColor(200, 40, 10));
        File.WriteAllText(dir.File("data/1_toy/a.txt"), "red, small");
        WriteImage(dir.File("data/1_toy/b.png"), 16, 16, new SKColor(20, 160, 40));
        return dir.File("data");
    }

    internal static void WriteImage(string path, int width, int height, SKColor color)
    {
        using var bitmap = new SKBitmap(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, new SKColor((byte)(color.Red + x * 3), (byte)(color.Green + y * 3), color.Blue));
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    [Fact]
    public void FoldersGiveRepeatsCaptionsAndFallbacksAndReportBadFiles()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("3_sks dog"));
        Directory.CreateDirectory(dir.File("1_red_cat"));
        Directory.CreateDirectory(dir.File("misc"));
        WriteImage(dir.File("3_sks dog/a.png"), 16, 16, SKColors.Brown);
        File.WriteAllText(dir.File("3_sks dog/a.txt"), "sks dog, running\n");
        WriteImage(dir.File("3_sks dog/b.png"), 48, 16, SKColors.Brown);
        WriteImage(dir.File("1_red_cat/c.png"), 8, 8, SKColors.Red);
        File.WriteAllText(dir.File("1_red_cat/c.caption"), "a red cat\r\nan emoji of a red cat\n\ncat, red\n");
        File.WriteAllText(dir.File("1_red_cat/broken.png"), "not a png");
        var dataset = TrainingDataset.Scan(dir.Path, new AspectRatioBuckets(16, 8));

        Assert.Equal(3, dataset.Images.Count);
        var a = dataset.Images.Single(i => i.Path.EndsWith("a.png"));
        Assert.Equal(("sks dog, running", 3, (16, 16)), (a.Caption, a.Repeats, a.Bucket));
        var b = dataset.Images.Single(i => i.Path.EndsWith("b.png"));
        Assert.Equal(("sks dog", (24, 8)), (b.Caption, b.Bucket));
        var c = dataset.Images.Single(i => i.Path.EndsWith("c.png"));
        // A1111's [filewords] is the whole file; kohya's LoRA caption is its first line.
        Assert.Equal(("a red cat an emoji of a red cat  cat, red", "a red cat", 1), (c.Caption, c.KohyaCaption, c.Repeats));
        Assert.Equal("sks dog, running", a.KohyaCaption);
        Assert.Equal(7, dataset.RepeatedCount);
        Assert.Contains(dataset.Problems, p => p.Contains("broken.png") && p.Contains("unreadable"));
        Assert.Contains(dataset.Problems, p => p.Contains("c.png") && p.Contains("smaller than its bucket"));
        Assert.Contains(dataset.Problems, p => p.Contains("misc") && p.Contains("N_concept"));

        var epoch0 = dataset.EpochBatches(5, 0, 2);
        Assert.Equal(epoch0.Select(x => string.Join("|", x.Select(i => i.Path))), dataset.EpochBatches(5, 0, 2).Select(x => string.Join("|", x.Select(i => i.Path))));
        Assert.Equal(7, epoch0.Sum(x => x.Length));
        Assert.All(epoch0, batch => Assert.Single(batch.Select(i => i.Bucket).Distinct()));
    }
}
