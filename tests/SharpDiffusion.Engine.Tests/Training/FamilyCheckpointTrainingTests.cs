using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Cli;
using SkiaSharp;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// Full fine-tuning (<c>train checkpoint</c>, U-Net and text encoders) beyond SD1: SD2-v (OpenCLIP, v target) and SDXL
/// (CLIP-L + bigG, pooled and size conditioning). The output is the family's own single-file layout — every tensor of
/// the input under its name, SDXL without DDPM buffers — with the trained parts changed and the VAE untouched, and
/// inspect and generate take it as they take the input.
/// </summary>
public class FamilyCheckpointTrainingTests
{
    [Theory]
    [InlineData("tiny_sd2v", "sd2", new[] { "cond_stage_model.model." })]
    [InlineData("tiny_sdxl", "sdxl", new[] { "conditioner.embedders.0.", "conditioner.embedders.1." })]
    public void FineTunedCheckpointKeepsTheFamilysLayout(string modelName, string family, string[] textPrefixes)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data/1_shapes"));
        foreach (var (name, colour) in new[] { ("red square", new SKColor(220, 30, 20)), ("green square", new SKColor(20, 200, 40)) })
        {
            string stem = dir.File("data/1_shapes/" + name.Replace(' ', '-'));
            ScheduleAndDataTests.WriteImage(stem + ".png", 16, 16, colour);
            File.WriteAllText(stem + ".txt", name);
        }
        string[] model = ["--model", TestPaths.GoldenFile(modelName + ".safetensors"), "--config", TestPaths.GoldenFile(modelName + ".config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip")];
        string output = dir.File("tuned.safetensors");
        var (code, _, stderr) = Run(["train", "checkpoint", .. model, "--data", dir.File("data"), "--out", output, "--train", "unet,te",
            "--max-steps", "2", "--batch", "2", "--lr", "1e-3", "--seed", "3"]);
        Assert.True(code == ExitCodes.Success, stderr);

        var before = CheckpointTrainerTests.Tensors(TestPaths.GoldenFile(modelName + ".safetensors"));
        var after = CheckpointTrainerTests.Tensors(output);
        Assert.Empty(before.Keys.Except(after.Keys));
        Assert.Empty(after.Keys.Except(before.Keys));
        Assert.All(after.Where(p => p.Key.StartsWith("first_stage_model.", StringComparison.Ordinal)), p => Assert.True(p.Value.SequenceEqual(before[p.Key]), p.Key));
        Assert.Contains(after, p => p.Key.StartsWith("model.diffusion_model.", StringComparison.Ordinal) && !p.Value.SequenceEqual(before[p.Key]));
        foreach (var prefix in textPrefixes)
            Assert.Contains(after, p => p.Key.StartsWith(prefix, StringComparison.Ordinal) && !p.Value.SequenceEqual(before[p.Key]));

        var (inspectCode, inspectOut, inspectErr) = Run("inspect", output, "--json");
        Assert.True(inspectCode == ExitCodes.Success, inspectErr);
        Assert.Contains("\"kind\":\"checkpoint\"", inspectOut);
        Assert.Contains($"\"base\":\"{family}\"", inspectOut);

        (code, _, stderr) = Run(["generate", "--model", output, "--config", TestPaths.GoldenFile(modelName + ".config.json"), "--tokenizer", TestPaths.GoldenFile("clip"),
            "--prompt", "red square", "--width", "16", "--height", "16", "--steps", "2", "--seed", "1", "--out", dir.File("out.png")]);
        Assert.True(code == ExitCodes.Success, stderr);
    }
}
