using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Formats.Safetensors;
using SkiaSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// Text-encoder LoRA training on OpenCLIP towers (SD2's ViT-H, SDXL's bigG beside CLIP-L): kohya trains them as the
/// transformers model's separate q/k/v projections, which the packed <c>in_proj</c> holds as row blocks. The file's
/// every key resolves in the engine's loader, and the text conditioning with the file patched in (inference) equals
/// the one the training forward computed with its hooked branches.
/// </summary>
public class OpenClipLoraTrainingTests
{
    private static string[] ModelArgs(string name) => ["--model", TestPaths.GoldenFile(name + ".safetensors"),
        "--config", TestPaths.GoldenFile(name + ".config.json"), "--tokenizer", TestPaths.GoldenFile("clip")];

    [Theory]
    [InlineData("tiny_sd2v", "lora_te_")]
    [InlineData("tiny_sdxl", "lora_te2_")]
    public void TextEncoderLoraOnOpenClipPatchesAsItTrained(string modelName, string openClipPrefix)
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("data/1_sks toy"));
        ScheduleAndDataTests.WriteImage(dir.File("data/1_sks toy/a.png"), 16, 16, new SKColor(200, 40, 10));
        ScheduleAndDataTests.WriteImage(dir.File("data/1_sks toy/b.png"), 16, 16, new SKColor(30, 160, 20));
        string path = dir.File("toy.safetensors");
        var (code, _, stderr) = Run(["train", "lora", .. ModelArgs(modelName), "--data", dir.File("data"), "--out", path, "--train", "unet,te",
            "--rank", "2", "--alpha", "1", "--lr", "5e-2", "--max-steps", "3", "--seed", "3", "--resolution", "16", "--bucket-step", "8"]);
        Assert.True(code == 0, stderr);

        using var file = SafetensorsFile.Open(path);
        Assert.Equal("False", file.Metadata["ss_network_train_unet_only"]);
        foreach (var module in new[] { "self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj", "self_attn_out_proj", "mlp_fc1", "mlp_fc2" })
            Assert.Contains(file.Tensors, t => t.Name == $"{openClipPrefix}text_model_encoder_layers_0_{module}.lora_up.weight");
        if (modelName == "tiny_sdxl") Assert.Contains(file.Tensors, t => t.Name == "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight");

        using var model = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile(modelName + ".safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile(modelName + ".config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
        });
        using var network = LoraTrainingNetwork.Load(model, file, new LoraNetworkOptions());
        var targets = ModelNetworkTargets.For(model);
        var resolution = targets.Resolver.Resolve(file.Tensors.Select(t => t.Name));
        Assert.Empty(resolution.Unused);
        Assert.Equal(network.Modules.Count, resolution.Modules.Count);

        using var ids = tensor(CaptionTokenIds.ForCaption(model, "sks toy, a red square"), [1, 77]);
        Tensor Context()
        {
            using var noGrad = no_grad();
            var (context, pooled) = TrainingConditioning.Encode(model, ids, 1);
            if (pooled is null) return context;
            using (context)
            using (pooled)
                return cat([context.flatten(), pooled.flatten()], 0);
        }
        using var plain = Context();
        network.Attach();
        using var hooked = Context();
        network.Detach();
        var loaded = NetworkModuleWeights.LoadAll(file, resolution);
        try
        {
            Tensor patched;
            using (var patcher = new NetworkPatcher(targets.Weights))
            {
                patcher.Apply(loaded, 1.0, 1.0);
                patched = Context();
            }
            using (patched)
            {
                double change = (hooked - plain).abs().max().item<float>(), diff = (hooked - patched).abs().max().item<float>();
                Assert.True(change > 1e-4, $"training changed the conditioning by only {change:E2}");
                Assert.True(diff <= 1e-4 * change, $"the patched text encoder differs from the training forward by {diff:E2} (change {change:E2})");
            }
        }
        finally
        {
            foreach (var m in loaded) m.Dispose();
        }
    }
}
