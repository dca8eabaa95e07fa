using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Cli;
using SharpDiffusion.Formats;
using static SharpDiffusion.Engine.Tests.LoraTools.LoraToolsFixtures;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.LoraTools;

/// <summary>extract-lora and resize-lora through the CLI entry point, in-process.</summary>
public sealed class LoraCommandTests
{

    private static string WriteTunedCopy(TempDir dir)
    {
        string tuned = dir.File("tuned.safetensors");
        var g = new Generator(5);
        WriteTuned(TinySd1, tuned, new Dictionary<string, Tensor>
        {
            [$"{Unet}middle_block.1.transformer_blocks.0.attn1.to_q.weight"] = LowRankChange([64, 64], 2, 0.05, g),
            [$"{TextEncoder}1.self_attn.v_proj.weight"] = LowRankChange([32, 32], 2, 0.05, g),
        });
        return tuned;
    }

    [Fact]
    public void Extract_lora_writes_the_file_and_exits_0()
    {
        using var dir = new TempDir();
        string tuned = WriteTunedCopy(dir), output = dir.File("out.safetensors");
        var (code, stdout, stderr) = Run("extract-lora", "--base", TinySd1, "--tuned", tuned, "--rank", "2", "--precision", "fp16", "--out", output);
        Assert.True(code == 0, stderr);
        Assert.Contains("12 modules extracted", stdout);
        Assert.Contains("48 modules extracted", stdout);
        Assert.DoesNotContain("warning", stderr);
        using var file = ModelFileReader.Open(output);
        Assert.Equal(180, file.Tensors.Count);
        Assert.All(file.Tensors, t => Assert.Equal(TensorDType.F16, t.DType));
    }

    [Fact]
    public void Extract_lora_of_identical_checkpoints_warns()
    {
        using var dir = new TempDir();
        string output = dir.File("same.safetensors");
        var (code, stdout, stderr) = Run("extract-lora", "--base", TinySd1, "--tuned", TinySd1, "--rank", "2", "--out", output);
        Assert.Equal(0, code);
        Assert.Contains("skipped (U-Net only)", stdout);
        Assert.Contains("warning: the checkpoints do not differ", stderr);
        Assert.True(File.Exists(output));
    }

    [Fact]
    public void Extract_lora_usage_errors_exit_2_without_output()
    {
        using var dir = new TempDir();
        string output = dir.File("out.safetensors");
        Assert.Equal(2, Run("extract-lora", "--base", dir.File("missing.safetensors"), "--tuned", TinySd1, "--rank", "2", "--out", output).Code);
        Assert.Equal(2, Run("extract-lora", "--base", TinySd1, "--tuned", TinySd1, "--rank", "0", "--out", output).Code);
        Assert.Equal(2, Run("extract-lora", "--base", TinySd1, "--tuned", TinySd1, "--rank", "2", "--precision", "fp8", "--out", output).Code);
        Assert.Equal(2, Run("extract-lora", "--base", TinySd1, "--tuned", TinySd1, "--rank", "2", "--clamp-quantile", "1.5", "--out", output).Code);
        Assert.Equal(2, Run("extract-lora", "--base", TinySd1, "--tuned", TinySd1, "--out", output).Code); // --rank missing
        var (code, _, stderr) = Run("extract-lora", "--base", TinySd1, "--tuned", TinySd1, "--rank", "2", "--out", TinySd1);
        Assert.Equal(2, code);
        Assert.Contains("would overwrite the input", stderr);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Extract_lora_from_another_family_exits_2_without_output()
    {
        using var dir = new TempDir();
        string output = dir.File("out.safetensors");
        var (code, _, stderr) = Run("extract-lora", "--base", TinySd1, "--tuned", TestPaths.GoldenFile("tiny_sd2v.safetensors"), "--rank", "2", "--out", output);
        Assert.Equal(2, code);
        Assert.StartsWith("sharpdiffusion: ", stderr);
        Assert.Contains("tiny_sd2v.safetensors", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Resize_lora_reports_energy_per_module_and_exits_0()
    {
        using var dir = new TempDir();
        string tuned = WriteTunedCopy(dir), lora = dir.File("lora.safetensors"), output = dir.File("small.safetensors");
        Assert.Equal(0, Run("extract-lora", "--base", TinySd1, "--tuned", tuned, "--rank", "4", "--clamp-quantile", "1", "--out", lora).Code);
        var (code, stdout, stderr) = Run("resize-lora", lora, "--rank", "2", "--out", output);
        Assert.True(code == 0, stderr);
        // The two changed layers have rank 2: all their energy is kept.
        var line = stdout.Split('\n').Single(l => l.StartsWith("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q ", StringComparison.Ordinal));
        Assert.Contains("4->2", line);
        Assert.Contains("100.000", line);
        Assert.Contains("60 modules resized", stdout);
        using var file = ModelFileReader.Open(output);
        Assert.Equal("2", file.Metadata["ss_network_dim"]);
        Assert.Equal("2.0", file.Metadata["ss_network_alpha"]);
    }

    [Fact]
    public void Resize_lora_errors_exit_2_without_output()
    {
        using var dir = new TempDir();
        string output = dir.File("out.safetensors");
        Assert.Equal(2, Run("resize-lora", dir.File("missing.safetensors"), "--rank", "2", "--out", output).Code);
        Assert.Equal(2, Run("resize-lora", TinySd1, "--rank", "0", "--out", output).Code);
        Assert.Equal(2, Run("resize-lora", TinySd1, "--rank", "2").Code); // --out missing
        Assert.Equal(2, Run("resize-lora", TinySd1, "--rank", "2", "--out", dir.File("no/such/folder/out.safetensors")).Code);
        var (code, _, stderr) = Run("resize-lora", TinySd1, "--rank", "2", "--out", output);
        Assert.Equal(2, code);
        Assert.Contains("no LoRA", stderr);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
