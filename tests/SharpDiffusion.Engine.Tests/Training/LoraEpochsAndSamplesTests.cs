using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Formats.Safetensors;
using SkiaSharp;
using Xunit.Abstractions;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// <c>train lora --epochs</c> (kohya's step count: ceil(micro-batches / accumulation) per epoch) and
/// <c>--sample-every --sample-prompts</c> (kohya's prompt-file flags; images made with the in-training weights equal
/// what generate makes with the finished file).
/// </summary>
public class LoraEpochsAndSamplesTests(ITestOutputHelper output)
{
    [Fact]
    public void PromptFileLinesFollowKohyasFlags()
    {
        using var dir = new TempDir();
        File.WriteAllLines(dir.File("p.txt"), ["# comment", "", "a cat, best --n low quality --w 512 --h 768 --d 42 --s 20 --l 6.5", "a dog --ss Euler a", "bad --s x"]);
        var e = Assert.Throws<InvalidDataException>(() => TrainingSamples.Read(dir.File("p.txt")));
        Assert.Contains("p.txt:5", e.Message);
        File.WriteAllLines(dir.File("p.txt"), ["# comment", "", "a cat, best --n low quality --w 512 --h 768 --d 42 --s 20 --l 6.5", "a dog --ss Euler a"]);
        var prompts = TrainingSamples.Read(dir.File("p.txt"));
        Assert.Equal(2, prompts.Count);
        Assert.Equal(new SamplePrompt("a cat, best", "low quality", 512, 768, 42, 20, 6.5, "DDIM"), prompts[0]);
        Assert.Equal(new SamplePrompt("a dog", "", null, null, null, 30, 7.5, "Euler a"), prompts[1]);
        File.WriteAllLines(dir.File("empty.txt"), ["# nothing"]);
        Assert.Contains("no prompt", Assert.Throws<InvalidDataException>(() => TrainingSamples.Read(dir.File("empty.txt"))).Message);
    }

    private static byte[] Pixels(string png)
    {
        using var bitmap = SKBitmap.Decode(png) ?? throw new Xunit.Sdk.XunitException($"{png}: not an image");
        Assert.Equal((16, 16), (bitmap.Width, bitmap.Height));
        return [.. bitmap.Pixels.SelectMany(c => new[] { c.Red, c.Green, c.Blue })];
    }

    [Fact]
    public void EpochsSetTheStepsAndSamplesShowTheInTrainingWeights()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data/2_sks toy"));
        ScheduleAndDataTests.WriteImage(dir.File("data/2_sks toy/a.png"), 16, 16, new SKColor(200, 40, 10));
        ScheduleAndDataTests.WriteImage(dir.File("data/2_sks toy/b.png"), 16, 16, new SKColor(20, 40, 210));
        Directory.CreateDirectory(dir.File("models/Lora"));
        string lora = dir.File("models/Lora/toy.safetensors");
        File.WriteAllLines(dir.File("prompts.txt"), ["# kohya prompt file", "sks toy --n blurry --d 3 --s 3 --l 5", "", "a blue thing --w 24 --h 16 --s 2 --ss Euler"]);
        // 2 images x 2 repeats = 4 micro-batches an epoch; accumulating 3 gives ceil(4/3) = 2 steps an epoch.
        var (code, stdout, stderr) = Run("train", "lora", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"),
            "--data", dir.File("data"), "--out", lora, "--rank", "4", "--lr", "5e-2", "--epochs", "2", "--grad-accum", "3", "--seed", "3",
            "--resolution", "16", "--bucket-step", "8", "--sample-every", "2", "--sample-prompts", dir.File("prompts.txt"), "--json");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.All(lines, l => Assert.Contains("\"total\":4", l));
        using (var file = SafetensorsFile.Open(lora))
        {
            Assert.Equal("4", file.Metadata["ss_steps"]);
            Assert.Equal("4", file.Metadata["ss_max_train_steps"]);
            Assert.Equal("2", file.Metadata["ss_num_epochs"]);
            Assert.Equal("2", file.Metadata["ss_epoch"]);
        }

        string samples = dir.File("models/Lora/samples");
        Assert.Equal(["toy_000002_00.png", "toy_000002_01.png", "toy_000004_00.png", "toy_000004_01.png"],
            Directory.GetFiles(samples).Select(f => Path.GetFileName(f)!).Order().ToArray());
        using (var bitmap = SKBitmap.Decode(Path.Combine(samples, "toy_000002_01.png"))) Assert.Equal((24, 16), (bitmap.Width, bitmap.Height));
        var atStep2 = Pixels(Path.Combine(samples, "toy_000002_00.png"));
        var atStep4 = Pixels(Path.Combine(samples, "toy_000004_00.png"));
        Assert.True(atStep2.Zip(atStep4, (a, b) => Math.Abs(a - b)).Max() > 0, "the samples did not change between steps 2 and 4");

        // The last sample is the finished LoRA: generate with the file (weights patched in place) gives the same image.
        string[] Generate(string prompt, string png) => ["generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"), "--width", "16", "--height", "16",
            "--steps", "3", "--sampler", "DDIM", "--cfg", "5", "--seed", "3", "--negative", "blurry", "--models-dir", dir.File("models"),
            "--prompt", prompt, "--out", png];
        var withLora = Run(Generate("sks toy <lora:toy:1>", dir.File("with.png")));
        Assert.True(withLora.Code == 0, withLora.Stderr);
        var plain = Run(Generate("sks toy", dir.File("plain.png")));
        Assert.True(plain.Code == 0, plain.Stderr);
        var generated = Pixels(dir.File("with.png"));
        var basePixels = Pixels(dir.File("plain.png"));
        int sameAsFile = atStep4.Zip(generated, (a, b) => Math.Abs(a - b)).Max();
        int fromBase = atStep4.Zip(basePixels, (a, b) => Math.Abs(a - b)).Max();
        output.WriteLine($"sample at step 4 vs generate with the file: max {sameAsFile}; vs the base model: max {fromBase}");
        Assert.True(sameAsFile <= 1, $"the step-4 sample differs from generate with the finished LoRA by {sameAsFile}");
        Assert.True(fromBase > 4, $"the LoRA moved the image by only {fromBase}");
    }

    [Fact]
    public void SampleEveryWithoutPromptsIsBadUsage()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data"));
        var (code, _, stderr) = Run("train", "lora", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--data", dir.File("data"),
            "--out", dir.File("o.safetensors"), "--sample-every", "5");
        Assert.Equal(2, code);
        Assert.Contains("--sample-prompts", stderr);
        (code, _, stderr) = Run("train", "lora", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--data", dir.File("data"),
            "--out", dir.File("o.safetensors"), "--algo", "dora");
        Assert.Equal(2, code);
        Assert.Contains("--algo dora", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
