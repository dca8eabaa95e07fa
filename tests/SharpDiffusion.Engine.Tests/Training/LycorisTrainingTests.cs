using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Networks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.ExtraNetworks;
using SharpDiffusion.Engine.Tests.Text;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Formats.Safetensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// LyCORIS LoCon / LoHa / LoKr training (<c>--algo</c>): autograd through every module type equals central finite
/// differences in float64; a short run writes a <c>lycoris.kohya</c> file whose every key the engine's loader resolves,
/// whose applied weight change equals the trained modules' change, and whose patched U-Net computes what the training
/// forward computed; inspect names the algorithm.
/// </summary>
public class LycorisTrainingTests(ITestOutputHelper output)
{
    private const string Golden = "ext/training_sd1_golden.safetensors";

    private static StableDiffusionCheckpoint LoadModel(ScalarType dtype) =>
        StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
            DType = dtype,
        });

    [Fact]
    public void LoKrFactorizationIsLycoris()
    {
        // LyCORIS factorization(dimension, -1)'s table.
        Assert.Equal((8L, 16L), TrainableLoKrModule.Factorization(128));
        Assert.Equal((10L, 25L), TrainableLoKrModule.Factorization(250));
        Assert.Equal((16L, 32L), TrainableLoKrModule.Factorization(512));
        Assert.Equal((32L, 32L), TrainableLoKrModule.Factorization(1024));
        Assert.Equal((1L, 127L), TrainableLoKrModule.Factorization(127));
        Assert.Equal((16L, 20L), TrainableLoKrModule.Factorization(320));
    }

    [Theory]
    [InlineData(LoraAlgorithm.LoCon)]
    [InlineData(LoraAlgorithm.LoHa)]
    [InlineData(LoraAlgorithm.LoKr)]
    public void GradientsEqualCentralDifferencesInFloat64(LoraAlgorithm algorithm)
    {
        using var checkpoint = LoadModel(ScalarType.Float64);
        var options = new LoraNetworkOptions { Algorithm = algorithm, Rank = 2, Alpha = 3, ConvRank = 2, ConvAlpha = 1 };
        using var network = LoraTrainingNetwork.Create(checkpoint, options, seed: 5, dtype: ScalarType.Float64);
        // Random values everywhere (the initialisation zeroes one factor, which would leave the others without gradient).
        using (no_grad())
        {
            using var generator = new Generator(17);
            foreach (var (_, p) in network.NamedParameters())
            {
                using var values = randn(p.shape, ScalarType.Float64, generator: generator);
                p.copy_(values.mul_(0.3));
            }
        }
        using var schedule = new KohyaNoiseSchedule();
        using var x0 = TextGolden.Read(Golden, "input.x0").to(ScalarType.Float64);
        using var t = TextGolden.Read(Golden, "input.timesteps");
        using var ids = TextGolden.Read(Golden, "input.input_ids");
        using var noise = TextGolden.Read(Golden, "kohya.noise_with_offset").to(ScalarType.Float64);
        using var noisy = schedule.AddNoise(x0, noise, t).to(ScalarType.Float64);

        double Loss()
        {
            using var scope = NewDisposeScope();
            var context = checkpoint.ClipL!.forward(ids);
            var prediction = checkpoint.UNet.Forward(noisy, t, context);
            using var diff = prediction - noise;
            var loss = diff.square().mean();
            if (loss.requires_grad) loss.backward();
            return loss.item<double>();
        }

        network.Attach();
        Loss();
        // A text-encoder linear, an attention linear, a ResBlock's time_emb_proj (a 64-channel block: with one channel per
        // group, tiny_sd1's GroupNorm erases a per-channel shift) and 3x3 conv, and the stride-2 downsampler.
        var picks = new[]
        {
            "lora_te_text_model_encoder_layers_0_mlp_fc1", "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k",
            "lora_unet_mid_block_resnets_0_time_emb_proj", "lora_unet_down_blocks_1_resnets_0_conv1", "lora_unet_down_blocks_0_downsamplers_0_conv",
        };
        int checkedEntries = 0;
        foreach (var name in picks)
        {
            var module = network.Modules.Single(m => m.Name == name);
            Assert.Equal(algorithm == LoraAlgorithm.LoCon ? "lora" : algorithm.ToString().ToLowerInvariant(), module.Algorithm);
            foreach (var (suffix, p) in module.Parameters)
            {
                using var flatGrad = p.grad!.flatten();
                foreach (long index in new long[] { 0, p.numel() - 1 })
                {
                    double analytic = flatGrad[index].item<double>();
                    const double h = 1e-5;
                    double Shifted(double delta)
                    {
                        using (no_grad()) p.view(-1)[index].add_(delta);
                        using (no_grad()) return Loss();
                    }
                    double plus = Shifted(h), minus = Shifted(-2 * h);
                    Shifted(h);
                    double numeric = (plus - minus) / (2 * h);
                    output.WriteLine($"{name}.{suffix} [{index}] autograd {analytic:E6} finite difference {numeric:E6}");
                    Assert.True(Math.Abs(numeric) > 1e-9, $"{name}.{suffix}[{index}]: the loss does not depend on this entry");
                    Assert.True(Math.Abs(analytic - numeric) <= 1e-6 * Math.Abs(numeric) + 1e-10,
                        $"{name}.{suffix}[{index}]: autograd {analytic:E6} vs finite difference {numeric:E6}");
                    checkedEntries++;
                }
            }
        }
        network.Detach();
        Assert.Equal(2 * picks.Sum(n => network.Modules.Single(m => m.Name == n).Parameters.Count), checkedEntries);
    }

    private static string MakeData(TempDir dir)
    {
        Directory.CreateDirectory(dir.File("data/2_sks toy"));
        ScheduleAndDataTests.WriteImage(dir.File("data/2_sks toy/a.png"), 16, 16, new SkiaSharp.SKColor(200, 40, 10));
        File.WriteAllText(dir.File("data/2_sks toy/a.txt"), "sks toy, red");
        ScheduleAndDataTests.WriteImage(dir.File("data/2_sks toy/b.png"), 16, 16, new SkiaSharp.SKColor(30, 160, 40));
        return dir.File("data");
    }

    [Theory]
    [InlineData("locon", "lora_down.weight")]
    [InlineData("loha", "hada_w1_a")]
    [InlineData("lokr", "lokr_w1")]
    public void TrainedFileLoadsInTheEngineWithTheTrainedWeightChange(string algo, string telling)
    {
        using var dir = new TempDir();
        string data = MakeData(dir);
        Directory.CreateDirectory(dir.File("models/Lora"));
        string path = dir.File("models/Lora/toy.safetensors");
        var (code, _, stderr) = Run("train", "lora", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"),
            "--config", TestPaths.GoldenFile("tiny_sd1.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"),
            "--data", data, "--out", path, "--algo", algo, "--rank", "2", "--alpha", "1", "--conv-rank", "2", "--conv-alpha", "2",
            "--lr", "2e-2", "--max-steps", "3", "--seed", "4", "--resolution", "16", "--bucket-step", "8", "--json");
        Assert.True(code == 0, stderr);

        using var model = LoadModel(ScalarType.Float32);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal("lycoris.kohya", file.Metadata["ss_network_module"]);
        Assert.Equal($"{{\"algo\":\"{algo}\",\"conv_dim\":\"2\",\"conv_alpha\":\"2\"}}", file.Metadata["ss_network_args"]);
        Assert.Equal("2", file.Metadata["ss_network_dim"]);
        Assert.Contains(file.Tensors, t => t.Name == "lora_unet_down_blocks_1_resnets_0_conv1." + telling);
        Assert.Contains(file.Tensors, t => t.Name == "lora_te_text_model_encoder_layers_0_self_attn_q_proj." + telling);
        Assert.Contains(file.Tensors, t => t.Name == "lora_unet_down_blocks_0_downsamplers_0_conv." + telling);
        if (algo == "locon")
            Assert.Equal([2L, 32, 3, 3], file.Tensors.Single(t => t.Name == "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight").Shape.Select(d => (long)d));

        using var network = LoraTrainingNetwork.Load(model, file, new LoraNetworkOptions());
        Assert.Equal(algo, network.Options.AlgorithmName);
        // Every key resolves to a model weight in the engine's loader, one module per trained module.
        var targets = ModelNetworkTargets.For(model);
        var resolution = targets.Resolver.Resolve(file.Tensors.Select(t => t.Name));
        Assert.Empty(resolution.Unused);
        Assert.Equal(network.Modules.Count, resolution.Modules.Count);
        Assert.Equal(file.Tensors.Count(t => t.Name.EndsWith(".alpha", StringComparison.Ordinal)), network.Modules.Count);

        // The loader's weight change of each module equals the trained module's.
        var loaded = NetworkModuleWeights.LoadAll(file, resolution);
        var byWeight = network.Modules.ToDictionary(m => m.LayerPath + ".weight");
        double worst = 0;
        int moved = 0;
        try
        {
            foreach (var weights in loaded)
            {
                var trained = byWeight[weights.Target.WeightKey];
                var weight = targets.Weights[weights.Target.WeightKey];
                using var engineDelta = NetworkWeightMath.Delta(weights, weight, 1.0);
                using var trainedDelta = trained.DeltaWeight();
                using var scaleT = trainedDelta.abs().max();
                double scale = scaleT.item<float>();
                if (scale > 0) moved++;
                using var diffT = (engineDelta - trainedDelta).abs().max();
                double diff = diffT.item<float>();
                worst = Math.Max(worst, scale > 0 ? diff / scale : diff);
                Assert.True(diff <= 1e-5 * scale + 1e-12, $"{trained.Name}: loader delta differs by {diff:E2} (delta max {scale:E2})");
            }

            // The U-Net patched with the file computes what training's forward (hooked branches) computed.
            using var x0 = TextGolden.Read(Golden, "input.x0");
            using var t = TextGolden.Read(Golden, "input.timesteps");
            using var ids = TextGolden.Read(Golden, "input.input_ids");
            Tensor Prediction()
            {
                using var noGrad = no_grad();
                using var context = model.ClipL!.forward(ids);
                return model.UNet.Forward(x0, t, context);
            }
            using var plain = Prediction();
            network.Attach();
            using var hooked = Prediction();
            network.Detach();
            Tensor patchedPrediction;
            using (var patcher = new NetworkPatcher(targets.Weights))
            {
                patcher.Apply(loaded, 1.0, 1.0);
                patchedPrediction = Prediction();
            }
            using (patchedPrediction)
            {
                using var changeT = (hooked - plain).abs().max();
                using var diffT = (hooked - patchedPrediction).abs().max();
                double change = changeT.item<float>(), diff = diffT.item<float>();
                output.WriteLine($"{algo}: {loaded.Count} modules, {moved} moved, worst delta rel {worst:E2}; U-Net change {change:E3}, hooked vs patched {diff:E2}");
                Assert.True(change > 1e-4, $"training changed the prediction by only {change:E2}");
                Assert.True(diff <= 1e-3 * change, $"patched U-Net differs from the training forward by {diff:E2} (change {change:E2})");
            }
        }
        finally
        {
            foreach (var m in loaded) m.Dispose();
        }
        Assert.True(moved > network.Modules.Count / 2, $"only {moved} of {network.Modules.Count} modules moved");

        var (inspectCode, inspectOut, inspectErr) = Run("inspect", path, "--json");
        Assert.True(inspectCode == 0, inspectErr);
        Assert.Contains("\"kind\":\"lora\"", inspectOut);
        Assert.Contains($"\"algorithm\":\"{algo}\"", inspectOut);
    }
}
