using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Tests.Embeddings;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

public sealed class LoraAtGenerationTests
{
    private const string UnetKey = "model.diffusion_model.input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight";
    private const string TeKey = "cond_stage_model.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight";
    private const string UnetModule = "lora_unet_input_blocks_3_1_transformer_blocks_0_attn2_to_k";
    private const string TeModule = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";

    /// <summary>A rank-2 kohya LoRA on one U-Net and one text-encoder layer of the tiny model (alphas 1 and 4).</summary>
    private static Dictionary<string, Tensor> WriteLora(string path, string unetModule = UnetModule, string teModule = TeModule)
    {
        var g = new Generator(11);
        var tensors = new Dictionary<string, Tensor>
        {
            [unetModule + ".lora_down.weight"] = randn(2, 32, generator: g),
            [unetModule + ".lora_up.weight"] = randn(64, 2, generator: g),
            [unetModule + ".alpha"] = tensor(1.0f),
            [teModule + ".lora_down.weight"] = randn(2, 32, generator: g),
            [teModule + ".lora_up.weight"] = randn(32, 2, generator: g),
            [teModule + ".alpha"] = tensor(4.0f),
        };
        SafetensorsTestWriter.Write(path, tensors.Select(kv => (kv.Key, kv.Value)));
        return tensors;
    }

    [Fact]
    public void PatchedWeightsAreTheLoraFormulaAndAreRestoredBitwise()
    {
        using var dir = new TempDir();
        var lora = WriteLora(dir.File("t.safetensors"));
        using var model = TinyModel.Load();
        var targets = ModelNetworkTargets.For(model);
        var unetBefore = targets.Weights[UnetKey].clone();
        var teBefore = targets.Weights[TeKey].clone();

        using (var applied = AppliedLoras.Apply(targets, [(A1111NetworkTag.Parse("<lora:t:0.5:0.8>"), dir.File("t.safetensors"))]))
        {
            var report = Assert.Single(applied.Reports);
            Assert.True(report.Applied);
            Assert.Equal(2, report.MatchedModules);
            Assert.Empty(report.UnmatchedKeys);
            Assert.Empty(applied.Warnings);

            var expectedUnet = unetBefore + 0.8 * (1.0 / 2) * lora[UnetModule + ".lora_up.weight"].matmul(lora[UnetModule + ".lora_down.weight"]);
            var expectedTe = teBefore + 0.5 * (4.0 / 2) * lora[TeModule + ".lora_up.weight"].matmul(lora[TeModule + ".lora_down.weight"]);
            var liveUnet = model.UNet.state_dict()["input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight"];
            Assert.True((liveUnet - expectedUnet).abs().max().item<float>() < 1e-6);
            Assert.True((targets.Weights[TeKey] - expectedTe).abs().max().item<float>() < 1e-6);
        }
        Assert.True(targets.Weights[UnetKey].eq(unetBefore).all().item<bool>());
        Assert.True(targets.Weights[TeKey].eq(teBefore).all().item<bool>());
    }

    [Fact]
    public void AJobWithoutTheLoraAfterOneWithItGivesTheBaseImage()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("Lora"));
        WriteLora(dir.File("Lora/t.safetensors"));
        using var model = TinyModel.Load();
        using var session = new ExtraNetworkSession(model, new ModelsFolder(dir.Path));

        using var first = session.Generate(TinyModel.Request("a cat"));
        using var withLora = session.Generate(TinyModel.Request("a cat<lora:t:1>"));
        using var zeroLora = session.Generate(TinyModel.Request("a cat<lora:t:0>"));
        using var third = session.Generate(TinyModel.Request("a cat"));

        Assert.Equal(first.Result.Images[0], third.Result.Images[0]);
        Assert.Equal(first.Result.Images[0], zeroLora.Result.Images[0]);
        Assert.NotEqual(first.Result.Images[0], withLora.Result.Images[0]);
        Assert.True(first.Result.Latents.eq(third.Result.Latents).all().item<bool>());
        Assert.Empty(withLora.Warnings);
        var hashes = Assert.Single(withLora.InfotextFields, f => f.Key == "Lora hashes").Value;
        Assert.Matches("^t: [0-9a-f]{12}$", hashes);
        Assert.Equal(LoraShortHash.Short(LoraShortHash.Compute(dir.File("Lora/t.safetensors"), null)), hashes[3..]);
        Assert.Contains("lora t: 2 modules matched, 0 keys unmatched", withLora.Details[0]);
    }

    [Fact]
    public void ALoraForAnotherFamilyOrAMissingNameIsSkippedWithAWarning()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("Lora"));
        WriteLora(dir.File("Lora/xl.safetensors"), "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", "lora_te2_text_model_encoder_layers_0_self_attn_q_proj");
        using var model = TinyModel.Load();
        using var session = new ExtraNetworkSession(model, new ModelsFolder(dir.Path));

        using var baseline = session.Generate(TinyModel.Request("a cat"));
        using var run = session.Generate(TinyModel.Request("a cat<lora:xl:1><lora:missing:1>"));

        Assert.Equal(baseline.Result.Images[0], run.Result.Images[0]);
        Assert.Equal(2, run.Warnings.Count);
        Assert.Contains("none of its 6 keys match this model", run.Warnings[0]);
        Assert.Contains("lora missing: no such network", run.Warnings[1]);
        Assert.DoesNotContain(run.InfotextFields, f => f.Key == "Lora hashes");
        Assert.All(run.Loras, r => Assert.False(r.Applied));
    }

    [Fact]
    public void SafetensorsHashSkipsTheHeaderAndStoredHashWins()
    {
        using var dir = new TempDir();
        var path = dir.File("a.safetensors");
        WriteLora(path);
        var bytes = File.ReadAllBytes(path);
        long headerEnd = 8 + BitConverter.ToInt64(bytes, 0);
        var expected = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes.AsSpan((int)headerEnd)));
        Assert.Equal(expected, LoraShortHash.Compute(path, null));
        Assert.Equal("abc", LoraShortHash.Compute(path, new Dictionary<string, string> { ["sshs_model_hash"] = "abc" }));
    }

    [Fact]
    public void SeveralLorasOnTheSameLayerAddUp()
    {
        using var dir = new TempDir();
        var a = WriteLora(dir.File("a.safetensors"));
        var g = new Generator(99);
        var bDown = randn(4, 32, generator: g);
        var bUp = randn(64, 4, generator: g);
        SafetensorsTestWriter.Write(dir.File("b.safetensors"), [(UnetModule + ".lora_down.weight", bDown), (UnetModule + ".lora_up.weight", bUp)]);
        using var model = TinyModel.Load();
        var targets = ModelNetworkTargets.For(model);
        var before = targets.Weights[UnetKey].clone();

        using var applied = AppliedLoras.Apply(targets, [
            (A1111NetworkTag.Parse("<lora:a:0.5>"), dir.File("a.safetensors")),
            (A1111NetworkTag.Parse("<lyco:b:1:0.3>"), dir.File("b.safetensors")),
        ]);

        // b has no alpha: scale 1 (alpha = rank).
        var expected = before + 0.5 * 0.5 * a[UnetModule + ".lora_up.weight"].matmul(a[UnetModule + ".lora_down.weight"]) + 0.3 * bUp.matmul(bDown);
        Assert.True((targets.Weights[UnetKey] - expected).abs().max().item<float>() < 1e-5);
        Assert.Equal([2, 1], applied.Reports.Select(r => r.MatchedModules));
    }

    [Fact]
    public void MostlyUnmatchedKeysWarnAndACorruptFileIsSkipped()
    {
        using var dir = new TempDir();
        var g = new Generator(5);
        SafetensorsTestWriter.Write(dir.File("half.safetensors"), [
            (UnetModule + ".lora_down.weight", randn(2, 32, generator: g)),
            (UnetModule + ".lora_up.weight", randn(64, 2, generator: g)),
            ("lora_unet_nowhere_a.lora_down.weight", randn(2, 32, generator: g)),
            ("lora_unet_nowhere_a.lora_up.weight", randn(64, 2, generator: g)),
            ("lora_unet_nowhere_b.lora_down.weight", randn(2, 32, generator: g)),
        ]);
        File.WriteAllBytes(dir.File("bad.safetensors"), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        using var model = TinyModel.Load();
        var targets = ModelNetworkTargets.For(model);

        using var applied = AppliedLoras.Apply(targets, [
            (A1111NetworkTag.Parse("<lora:half>"), dir.File("half.safetensors")),
            (A1111NetworkTag.Parse("<lora:bad>"), dir.File("bad.safetensors")),
        ]);

        Assert.True(applied.Reports[0].Applied);
        Assert.Equal(3, applied.Reports[0].UnmatchedKeys.Count);
        Assert.Contains("3 of its 5 keys match nothing", applied.Warnings[0]);
        Assert.False(applied.Reports[1].Applied);
        Assert.Contains("lora bad", applied.Warnings[1]);
        Assert.Contains("not applied", applied.Warnings[1]);
        Assert.Equal(1, applied.PatchedTensorCount);
    }

    [Fact]
    public void ALoraWhoseShapesDoNotFitIsUndoneAloneAndTheOthersStay()
    {
        using var dir = new TempDir();
        var good = WriteLora(dir.File("good.safetensors"));
        var g = new Generator(8);
        SafetensorsTestWriter.Write(dir.File("wide.safetensors"), [
            (TeModule + ".lora_down.weight", randn(2, 32, generator: g)),
            (TeModule + ".lora_up.weight", randn(32, 2, generator: g)),
            (UnetModule + ".lora_down.weight", randn(2, 48, generator: g)),
            (UnetModule + ".lora_up.weight", randn(64, 2, generator: g)),
        ]);
        using var model = TinyModel.Load();
        var targets = ModelNetworkTargets.For(model);
        var unetBefore = targets.Weights[UnetKey].clone();
        var teBefore = targets.Weights[TeKey].clone();

        using (var applied = AppliedLoras.Apply(targets, [
            (A1111NetworkTag.Parse("<lora:good:1>"), dir.File("good.safetensors")),
            (A1111NetworkTag.Parse("<lora:wide:1>"), dir.File("wide.safetensors")),
        ]))
        {
            Assert.True(applied.Reports[0].Applied);
            Assert.False(applied.Reports[1].Applied);
            Assert.Contains("lora wide", Assert.Single(applied.Warnings));
            var expectedTe = teBefore + 2.0 * good[TeModule + ".lora_up.weight"].matmul(good[TeModule + ".lora_down.weight"]);
            Assert.True((targets.Weights[TeKey] - expectedTe).abs().max().item<float>() < 1e-6);
            Assert.Equal(2, applied.PatchedTensorCount);
            Assert.Matches("^good: [0-9a-f]{12}$", applied.HashesInfotext);
        }
        Assert.True(targets.Weights[UnetKey].eq(unetBefore).all().item<bool>());
        Assert.True(targets.Weights[TeKey].eq(teBefore).all().item<bool>());
    }
}
