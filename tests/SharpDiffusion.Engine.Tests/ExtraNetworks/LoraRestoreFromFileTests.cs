using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.Embeddings;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

/// <summary>Weights that still equal the checkpoint file are restored from it (no copy kept), bit for bit, at any precision.</summary>
public sealed class LoraRestoreFromFileTests
{
    private const string UnetModule = "lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k";
    private const string TeModule = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
    private const string UnetKey = "model.diffusion_model.input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight";

    private static void WriteLora(string path, int seed)
    {
        var g = new Generator((ulong)seed);
        SafetensorsTestWriter.Write(path, [
            (UnetModule + ".lora_down.weight", randn(2, 32, generator: g)), (UnetModule + ".lora_up.weight", randn(64, 2, generator: g)),
            (UnetModule + ".alpha", tensor(1.0f)),
            (TeModule + ".lora_down.weight", randn(2, 32, generator: g)), (TeModule + ".lora_up.weight", randn(32, 2, generator: g)),
        ]);
    }

    private static Dictionary<string, byte[]> Snapshot(ModelNetworkTargets targets) =>
        targets.Weights.ToDictionary(kv => kv.Key, kv => kv.Value.contiguous().bytes.ToArray());

    private static void AssertSame(Dictionary<string, byte[]> expected, ModelNetworkTargets targets)
    {
        foreach (var (key, bytes) in expected) Assert.True(bytes.AsSpan().SequenceEqual(targets.Weights[key].contiguous().bytes), key);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void UnchangedWeightsAreRestoredFromTheFileAndStackedNetworksFromCopies(ScalarType dtype)
    {
        using var dir = new TempDir();
        WriteLora(dir.File("a.safetensors"), 1);
        WriteLora(dir.File("b.safetensors"), 2);
        using var model = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"),
            DType = dtype,
        });
        using var targets = ModelNetworkTargets.For(model);
        var before = Snapshot(targets);

        using (var applied = AppliedLoras.Apply(targets, [
            (A1111NetworkTag.Parse("<lora:a:1>"), dir.File("a.safetensors")),
            (A1111NetworkTag.Parse("<lora:b:0.5>"), dir.File("b.safetensors")),
        ]))
        {
            Assert.Equal(4, applied.PatchedTensorCount);
            // a finds the weights as loaded; b finds them changed by a, so it keeps copies (restored first, in reverse).
            Assert.Equal(2, applied.RestoredFromFileCount);
            Assert.False(targets.Weights[UnetKey].contiguous().bytes.SequenceEqual(before[UnetKey]));
        }
        AssertSame(before, targets);
        // b's copies stay allocated for the next job, in the model's dtype (the text encoder's too: it runs in it).
        Assert.Equal((64 * 32 + 32 * 32) * targets.Weights[UnetKey].ElementSize, targets.Backups.SpareBytes);
    }

    [Fact]
    public void AWeightThatNoLongerMatchesTheFileIsCopiedAndComesBackAsItWas()
    {
        using var dir = new TempDir();
        WriteLora(dir.File("a.safetensors"), 3);
        using var model = TinyModel.Load();
        using var targets = ModelNetworkTargets.For(model);
        using (no_grad()) targets.Weights[UnetKey][0, 0] += 0.25f; // e.g. left changed by someone else
        var before = Snapshot(targets);
        Assert.False(targets.Originals!.CanRestore(UnetKey, targets.Weights[UnetKey]));

        using (var applied = AppliedLoras.Apply(targets, [(A1111NetworkTag.Parse("<lora:a:1>"), dir.File("a.safetensors"))]))
            Assert.Equal(1, applied.RestoredFromFileCount); // the text-encoder weight only

        AssertSame(before, targets);
        Assert.True(targets.Backups.SpareBytes > 0); // the U-Net copy's buffer, kept for the next job
    }

    [Fact]
    public void BaseLoraBaseImagesAreIdenticalInBfloat16()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("Lora"));
        WriteLora(dir.File("Lora/t.safetensors"), 4);
        using var model = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
            DType = ScalarType.BFloat16,
        });
        using var session = new ExtraNetworkSession(model, new ModelsFolder(dir.Path));

        using var first = session.Generate(TinyModel.Request("a cat"));
        using var withLora = session.Generate(TinyModel.Request("a cat<lora:t:1>"));
        using var again = session.Generate(TinyModel.Request("a cat<lora:t:1>"));
        using var third = session.Generate(TinyModel.Request("a cat"));

        Assert.Equal(first.Result.Images[0], third.Result.Images[0]);
        Assert.Equal(withLora.Result.Images[0], again.Result.Images[0]);
        Assert.NotEqual(first.Result.Images[0], withLora.Result.Images[0]);
    }
}
