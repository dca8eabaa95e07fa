using SharpDiffusion.Conversion;
using SharpDiffusion.Engine.LoraTools;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Formats;
using static SharpDiffusion.Engine.Tests.LoraTools.LoraToolsFixtures;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.LoraTools;

public sealed class LoraExtractorTests
{
    /// <summary>Every attention / ff / proj layer of the U-Net and every text-encoder q/k/v/out/fc layer gets a rank-2 change.</summary>
    private static Dictionary<string, Tensor> RankTwoChanges(double magnitude, bool textEncoder = true, long seed = 1234)
    {
        var generator = new Generator((ulong)seed);
        using var file = ModelFileReader.Open(TinySd1);
        var shapes = file.Tensors.ToDictionary(t => t.Name, t => t.Shape);
        var keys = Transformers.SelectMany(t => TransformerLayers.Select(l => $"{Unet}{t.Ldm}.{l}.weight")).ToList();
        if (textEncoder) keys.AddRange(Enumerable.Range(0, 2).SelectMany(i => TextEncoderLayers.Select(l => $"{TextEncoder}{i}.{l}.weight")));
        return keys.ToDictionary(k => k, k => LowRankChange(shapes[k], 2, magnitude, generator));
    }

    /// <summary>Applies a LoRA file to the base the way the engine does (resolver + weight math) and compares with the tuned file.</summary>
    private static (double MaxError, NetworkResolution Resolution) ApplyAndCompare(string loraPath, string tunedPath)
    {
        using var baseFile = ModelFileReader.Open(TinySd1);
        using var tunedFile = ModelFileReader.Open(tunedPath);
        using var lora = ModelFileReader.Open(loraPath);
        var resolution = NetworkKeyResolver.ForModel(baseFile.Tensors.Select(t => t.Name)).Resolve(lora.Tensors.Select(t => t.Name));
        var baseWeights = ReadAll(baseFile);
        var tunedWeights = ReadAll(tunedFile);
        var patched = new HashSet<string>(StringComparer.Ordinal);
        double maxError = 0;
        foreach (var module in resolution.Modules)
        {
            using var weights = NetworkModuleWeights.Load(lora, module);
            var key = module.Target.WeightKey;
            using var delta = NetworkWeightMath.Delta(weights, baseWeights[key], 1.0);
            using var applied = baseWeights[key] + delta;
            maxError = Math.Max(maxError, MaxAbs(applied, tunedWeights[key]));
            patched.Add(key);
        }
        // Layers the LoRA does not touch must be unchanged in the tuned file (else the LoRA missed a change).
        foreach (var (key, tuned) in tunedWeights)
            if (!patched.Contains(key)) maxError = Math.Max(maxError, MaxAbs(baseWeights[key], tuned));
        foreach (var t in baseWeights.Values.Concat(tunedWeights.Values)) t.Dispose();
        return (maxError, resolution);
    }

    [Fact]
    public void Extracted_lora_applied_to_the_base_recovers_the_tuned_weights()
    {
        using var dir = new TempDir();
        string tuned = dir.File("tuned.safetensors"), lora = dir.File("lora.safetensors");
        var changes = RankTwoChanges(0.05);
        WriteTuned(TinySd1, tuned, changes);
        var progress = new List<LoraToolProgress>();
        var result = LoraExtractor.Extract(TinySd1, tuned, lora, new LoraExtractionOptions { Rank = 4, ClampQuantile = 1.0 },
            new SynchronousProgress<LoraToolProgress>(progress.Add));

        Assert.Equal(48, result.UnetModules);
        Assert.Equal(12, result.TextEncoderModules);
        double expectedUnetMax = changes.Where(c => c.Key.StartsWith(Unet, StringComparison.Ordinal)).Max(c => c.Value.abs().max().item<float>());
        Assert.Equal(expectedUnetMax, result.UnetMaxDiff, 5);
        var (maxError, resolution) = ApplyAndCompare(lora, tuned);
        Assert.Empty(resolution.Unused);
        Assert.Equal(60, resolution.Modules.Count);
        Assert.All(resolution.Modules, m => Assert.Equal(NetworkAlgorithm.LoRA, m.Algorithm));
        Assert.True(maxError < 1e-4, $"max error {maxError}");
        Assert.True(result.MeanKeptEnergy > 0.999999, $"energy {result.MeanKeptEnergy}");
        Assert.Contains(progress, p => p.Stage == "svd" && p.Done == 60 && p.Total == 60);

        using var file = ModelFileReader.Open(lora);
        Assert.Equal(180, file.Tensors.Count);
        Assert.Contains(file.Tensors, t => t.Name == "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight" && t.Shape.SequenceEqual(new long[] { 64, 4 }));
        Assert.Contains(file.Tensors, t => t.Name == "lora_unet_mid_block_attentions_0_proj_in.lora_down.weight" && t.Shape.SequenceEqual(new long[] { 4, 64, 1, 1 }));
        Assert.Contains(file.Tensors, t => t.Name == "lora_te_text_model_encoder_layers_1_mlp_fc2.lora_down.weight" && t.Shape.SequenceEqual(new long[] { 4, 128 }));
        var alpha = file.Tensors.Single(t => t.Name == "lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha");
        Assert.Empty(alpha.Shape);
        Assert.Equal(TensorDType.F32, alpha.DType);
        Assert.Equal("networks.lora", file.Metadata["ss_network_module"]);
        Assert.Equal("4", file.Metadata["ss_network_dim"]);
        Assert.Equal("4.0", file.Metadata["ss_network_alpha"]);
        Assert.Equal("sd_v1", file.Metadata["ss_base_model_version"]);
        Assert.Equal("False", file.Metadata["ss_v2"]);
        Assert.Equal("{}", file.Metadata["ss_network_args"]);
        Assert.Equal("stable-diffusion-v1/lora", file.Metadata["modelspec.architecture"]);
    }

    [Fact]
    public void Text_encoder_below_min_diff_is_skipped()
    {
        using var dir = new TempDir();
        string tuned = dir.File("tuned.safetensors"), lora = dir.File("lora.safetensors");
        var changes = RankTwoChanges(0.05, textEncoder: false);
        // A text-encoder change whose largest element stays under kohya's 0.01.
        using (var te = ModelFileReader.Open(TinySd1))
        {
            var shape = te.Tensors.Single(t => t.Name == $"{TextEncoder}0.mlp.fc1.weight").Shape;
            changes[$"{TextEncoder}0.mlp.fc1.weight"] = full(shape, 0.005f);
        }
        WriteTuned(TinySd1, tuned, changes);
        var result = LoraExtractor.Extract(TinySd1, tuned, lora, new LoraExtractionOptions { Rank = 2, ClampQuantile = 1.0 });

        Assert.Equal(0, result.TextEncoderModules);
        Assert.Equal(48, result.UnetModules);
        Assert.InRange(result.TextEncoderMaxDiff, 0.0049, 0.0051);
        using var file = ModelFileReader.Open(lora);
        Assert.DoesNotContain(file.Tensors, t => t.Name.StartsWith("lora_te_", StringComparison.Ordinal));

        // With a lower threshold the same change is extracted (a constant matrix has rank 1).
        var lower = LoraExtractor.Extract(TinySd1, tuned, dir.File("lora2.safetensors"), new LoraExtractionOptions { Rank = 2, ClampQuantile = 1.0, MinDiff = 0.001 });
        Assert.Equal(12, lower.TextEncoderModules);
    }

    [Fact]
    public void Conv_rank_extracts_3x3_convolutions_as_locon()
    {
        using var dir = new TempDir();
        string tuned = dir.File("tuned.safetensors"), lora = dir.File("lora.safetensors");
        var generator = new Generator(99);
        var changes = new Dictionary<string, Tensor>
        {
            [$"{Unet}input_blocks.1.0.in_layers.2.weight"] = LowRankChange([32, 32, 3, 3], 2, 0.05, generator),
            [$"{Unet}input_blocks.1.0.emb_layers.1.weight"] = LowRankChange([32, 128], 2, 0.05, generator),
            [$"{Unet}input_blocks.3.1.transformer_blocks.0.attn2.to_k.weight"] = LowRankChange([64, 32], 2, 0.05, generator),
        };
        WriteTuned(TinySd1, tuned, changes);
        var result = LoraExtractor.Extract(TinySd1, tuned, lora, new LoraExtractionOptions { Rank = 2, ConvRank = 3, ClampQuantile = 1.0 });

        Assert.Equal(0, result.TextEncoderModules);
        var (maxError, resolution) = ApplyAndCompare(lora, tuned);
        Assert.Empty(resolution.Unused);
        Assert.True(maxError < 1e-4, $"max error {maxError}");
        using var file = ModelFileReader.Open(lora);
        var conv = file.Tensors.Single(t => t.Name == "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight");
        Assert.Equal(new long[] { 3, 32, 3, 3 }, conv.Shape);
        Assert.Equal(new long[] { 32, 3, 1, 1 }, file.Tensors.Single(t => t.Name == "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight").Shape);
        Assert.Equal(new long[] { 2, 128 }, file.Tensors.Single(t => t.Name == "lora_unet_down_blocks_0_resnets_0_time_emb_proj.lora_down.weight").Shape);
        Assert.Contains(file.Tensors, t => t.Name == "lora_unet_down_blocks_0_downsamplers_0_conv.lora_up.weight");
        Assert.Contains(file.Tensors, t => t.Name == "lora_unet_up_blocks_1_upsamplers_0_conv.lora_up.weight" || t.Name == "lora_unet_up_blocks_0_upsamplers_0_conv.lora_up.weight");
        Assert.Equal("{\"conv_dim\": \"3\", \"conv_alpha\": \"3.0\"}", file.Metadata["ss_network_args"]);
    }

    [Fact]
    public void Clamp_quantile_bounds_every_value_and_fp16_output_is_stored_as_f16()
    {
        using var dir = new TempDir();
        string tuned = dir.File("tuned.safetensors"), lora = dir.File("lora.safetensors");
        WriteTuned(TinySd1, tuned, RankTwoChanges(0.05));
        LoraExtractor.Extract(TinySd1, tuned, lora, new LoraExtractionOptions { Rank = 4, ClampQuantile = 0.9, OutputDType = TensorDType.F16 });
        using var file = ModelFileReader.Open(lora);
        Assert.All(file.Tensors, t => Assert.Equal(TensorDType.F16, t.DType));
        using var up = Weights.TensorReading.Read(file, file.Tensors.Single(t => t.Name.EndsWith("mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj.lora_up.weight", StringComparison.Ordinal)), ScalarType.Float32);
        using var down = Weights.TensorReading.Read(file, file.Tensors.Single(t => t.Name.EndsWith("mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj.lora_down.weight", StringComparison.Ordinal)), ScalarType.Float32);
        // Clamping at the 90th percentile puts the top tenth (and the matching negative tail) exactly on the bound.
        double bound = Math.Max(up.abs().max().item<float>(), down.abs().max().item<float>());
        using var all = cat([up.flatten(), down.flatten()]).abs();
        long atBound = (all >= (float)(bound * 0.999)).sum().item<long>();
        Assert.True(atBound >= all.shape[0] / 10, $"{atBound} of {all.shape[0]} values at the bound");
    }

    [Fact]
    public void Quantile_interpolates_linearly_like_torch()
    {
        using var values = tensor(new float[] { 4, 1, 3, 2 });
        Assert.Equal(2.5, LowRankFactorization.Quantile(values, 0.5), 12);
        Assert.Equal(1.0, LowRankFactorization.Quantile(values, 0.0), 12);
        Assert.Equal(4.0, LowRankFactorization.Quantile(values, 1.0), 12);
        using var hundred = arange(101, ScalarType.Float32);
        Assert.Equal(99.0, LowRankFactorization.Quantile(hundred, 0.99), 9);
        Assert.Equal(3.97, LowRankFactorization.Quantile(values, 0.99), 9);
    }

    [Fact]
    public void Refuses_checkpoints_of_another_family()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<InvalidModelFileException>(() => LoraExtractor.Extract(TinySd1, TestPaths.GoldenFile("tiny_sd2v.safetensors"),
            dir.File("out.safetensors"), new LoraExtractionOptions { Rank = 2 }));
        Assert.Contains("SD 2", e.Message);
        Assert.False(File.Exists(dir.File("out.safetensors")));
    }

    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
