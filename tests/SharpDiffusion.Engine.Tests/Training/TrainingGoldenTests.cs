using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.Text;
using SharpDiffusion.Engine.Training;
using SharpDiffusion.Formats.Safetensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// kohya's training step on the tiny SD1 (eps) and SD2-v models against ext/training_*_golden (README §4): schedule,
/// noise offset, noisy latents, targets, U-Net prediction, per-sample MSE, min-SNR weights and loss; and the gradients
/// of every lora_down/lora_up of the 60-module kohya LoRA (text encoder + U-Net), tolerances of README §5.
/// </summary>
public class TrainingGoldenTests(ITestOutputHelper output)
{
    private const string Sd1Golden = "ext/training_sd1_golden.safetensors";
    private const string Sd2vGolden = "ext/training_sd2v_golden.safetensors";

    private static StableDiffusionCheckpoint LoadModel(string name) =>
        StableDiffusionCheckpoint.Load(TestPaths.GoldenFile(name + ".safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile(name + ".config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
        });

    /// <summary>Relative error max|a − b| / max|b| ≤ tolerance (README §5: schedule, latents, weights, losses rel ≤ 1e-5).</summary>
    private void AssertRelative(string golden, string name, Tensor actual, double tolerance = 1e-5)
    {
        using var expected = TextGolden.Read(golden, name);
        double diff = TextGolden.MaxAbsDiff(actual, expected);
        using var scaleT = expected.to(ScalarType.Float64).abs().max();
        double rel = diff / Math.Max(scaleT.item<double>(), 1e-30);
        output.WriteLine($"{name}: max abs {diff:E2}, rel {rel:E2}");
        Assert.True(rel <= tolerance, $"{name}: relative difference {rel:E2} > {tolerance:E0}");
    }

    private void AssertAbsolute(string golden, string name, Tensor actual, double tolerance)
    {
        using var expected = TextGolden.Read(golden, name);
        double diff = TextGolden.MaxAbsDiff(actual, expected);
        output.WriteLine($"{name}: max abs {diff:E2}");
        Assert.True(diff <= tolerance, $"{name}: max abs difference {diff:E2} > {tolerance:E0}");
    }

    [Theory]
    [InlineData("tiny_sd1", Sd1Golden, false)]
    [InlineData("tiny_sd2v", Sd2vGolden, true)]
    public void KohyaStepMatchesGolden(string model, string golden, bool vPrediction)
    {
        using var checkpoint = LoadModel(model);
        Assert.Equal(vPrediction, checkpoint.Prediction == Prediction.V);
        using var schedule = new KohyaNoiseSchedule();
        using var x0 = TextGolden.Read(golden, "input.x0");
        using var noise = TextGolden.Read(golden, "input.noise");
        using var t = TextGolden.Read(golden, "input.timesteps");
        using var context = TextGolden.Read(golden, "input.context");
        using var offsetDraw = TextGolden.Read(golden, "input.offset_noise");

        AssertRelative(golden, "kohya.alphas_cumprod", schedule.AlphasCumprod);
        AssertRelative(golden, "kohya.all_snr", schedule.AllSnr);
        using var noiseWithOffset = DiffusionLoss.ApplyNoiseOffset(noise, offsetDraw, 0.1);
        AssertRelative(golden, "kohya.noise_with_offset", noiseWithOffset);
        using var noisy = schedule.AddNoise(x0, noiseWithOffset, t);
        AssertRelative(golden, "kohya.noisy_latents", noisy);
        using var target = DiffusionLoss.Target(schedule, x0, noiseWithOffset, t, vPrediction);
        AssertRelative(golden, "kohya.target", target);
        using var snr = schedule.Snr(t);
        AssertRelative(golden, "kohya.snr", snr);
        using var wEps = schedule.MinSnrWeight(t, 5.0, vPrediction: false);
        using var wV = schedule.MinSnrWeight(t, 5.0, vPrediction: true);
        AssertRelative(golden, "kohya.min_snr_weight_eps", wEps);
        AssertRelative(golden, "kohya.min_snr_weight_v", wV);

        using var prediction = checkpoint.UNet.Forward(noisy, t, context);
        AssertAbsolute(golden, "kohya.model_pred", prediction, 1e-4);
        using var terms = DiffusionLoss.Compute(prediction, target, t, schedule, 5.0, vPrediction);
        AssertRelative(golden, "kohya.mse_per_sample", terms.MsePerSample);
        AssertRelative(golden, "kohya.loss_per_sample", terms.LossPerSample);
        AssertRelative(golden, "kohya.loss", terms.Loss);
    }

    [Fact]
    public void KohyaLoraGradientsMatchGolden()
    {
        using var checkpoint = LoadModel("tiny_sd1");
        using var loraFile = SafetensorsFile.Open(TestPaths.GoldenFile("ext/tiny_sd1_lora.safetensors"));
        using var network = LoraTrainingNetwork.Load(checkpoint, loraFile, new LoraNetworkOptions());
        Assert.Equal(60, network.Modules.Count);
        Assert.All(network.Modules, m => Assert.Equal(0.5, m.Scale));
        using var schedule = new KohyaNoiseSchedule();
        using var x0 = TextGolden.Read(Sd1Golden, "input.x0");
        using var t = TextGolden.Read(Sd1Golden, "input.timesteps");
        using var ids = TextGolden.Read(Sd1Golden, "input.input_ids");
        using var noiseWithOffset = TextGolden.Read(Sd1Golden, "kohya.noise_with_offset");

        network.Attach();
        using var context = checkpoint.ClipL!.forward(ids);
        AssertAbsolute(Sd1Golden, "lora.context", context, 1e-4);
        using var noisy = schedule.AddNoise(x0, noiseWithOffset, t);
        using var prediction = checkpoint.UNet.Forward(noisy, t, context);
        AssertAbsolute(Sd1Golden, "lora.model_pred", prediction, 1e-4);
        using var terms = DiffusionLoss.Compute(prediction, noiseWithOffset, t, schedule, 5.0, vPrediction: false);
        AssertRelative(Sd1Golden, "lora.mse_per_sample", terms.MsePerSample);
        AssertRelative(Sd1Golden, "lora.loss", terms.Loss);
        terms.Loss.backward();
        network.Detach();

        using var golden = SafetensorsFile.Open(TestPaths.GoldenFile(Sd1Golden));
        int compared = 0;
        double worst = 0;
        foreach (var (name, parameter) in network.NamedParameters())
        {
            using var expected = TextGolden.Read(Sd1Golden, "lora.grad." + name);
            var grad = parameter.grad ?? throw new Xunit.Sdk.XunitException($"{name}: no gradient");
            double diff = TextGolden.MaxAbsDiff(grad, expected);
            using var rmsT = expected.square().mean().sqrt();
            double rms = rmsT.item<float>();
            worst = Math.Max(worst, diff / rms);
            Assert.True(diff <= 1e-3 * rms, $"{name}: gradient max abs {diff:E2} > 1e-3 x rms {rms:E2}");
            compared++;
        }
        output.WriteLine($"{compared} gradients, worst max abs / rms {worst:E2}");
        Assert.Equal(golden.Tensors.Count(x => x.Name.StartsWith("lora.grad.", StringComparison.Ordinal)), compared);
    }
}

/// <summary>
/// The LoRA gradients against central finite differences with the whole model (text encoder, U-Net, LoRA) in float64:
/// autograd through the hooked branches must be the derivative of the loss, entry by entry.
/// </summary>
public class LoraFiniteDifferenceTests(ITestOutputHelper output)
{
    [Fact]
    public void GradientsEqualCentralDifferencesInFloat64()
    {
        using var checkpoint = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
            DType = ScalarType.Float64,
        });
        using var loraFile = SafetensorsFile.Open(TestPaths.GoldenFile("ext/tiny_sd1_lora.safetensors"));
        using var network = LoraTrainingNetwork.Load(checkpoint, loraFile, new LoraNetworkOptions(), ScalarType.Float64);
        const string golden = "ext/training_sd1_golden.safetensors";
        using var schedule = new KohyaNoiseSchedule();
        using var x0 = TextGolden.Read(golden, "input.x0").to(ScalarType.Float64);
        using var t = TextGolden.Read(golden, "input.timesteps");
        using var ids = TextGolden.Read(golden, "input.input_ids");
        using var noise = TextGolden.Read(golden, "kohya.noise_with_offset").to(ScalarType.Float64);
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
        // One text-encoder and two U-Net modules (a 1x1 conv and a linear), two entries of each matrix.
        var picks = new[] { "lora_te_text_model_encoder_layers_0_mlp_fc1", "lora_unet_down_blocks_1_attentions_0_proj_in", "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k" };
        int checkedEntries = 0;
        foreach (var name in picks)
        {
            var module = (TrainableLoraModule)network.Modules.Single(m => m.Name == name);
            foreach (var p in new[] { module.Down, module.Up })
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
                    output.WriteLine($"{name} [{index}] autograd {analytic:E6} finite difference {numeric:E6}");
                    Assert.True(Math.Abs(analytic - numeric) <= 1e-6 * Math.Max(1e-3, Math.Abs(numeric)) + 1e-9,
                        $"{name}[{index}]: autograd {analytic:E6} vs finite difference {numeric:E6}");
                    checkedEntries++;
                }
            }
        }
        network.Detach();
        Assert.Equal(12, checkedEntries);
    }
}

/// <summary>A1111 textual inversion on tiny_sd1 against ext/training_sd1_golden (README §4.2 b): conditioning, p_losses loss, gradient of the vectors.</summary>
public class TextualInversionGoldenTests(ITestOutputHelper output)
{
    private const string Golden = "ext/training_sd1_golden.safetensors";

    [Fact]
    public void ConditioningLossAndVectorGradientMatchA1111()
    {
        using var checkpoint = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
        });
        using var initial = TextGolden.Read(Golden, "ti.vectors");
        using var vectors = initial.clone().requires_grad_(true);
        using var tiIds = TextGolden.Read(Golden, "ti.input_ids");
        using var x0 = TextGolden.Read(Golden, "input.x0");
        using var noise = TextGolden.Read(Golden, "input.noise");
        using var t = TextGolden.Read(Golden, "input.timesteps");
        var offsets = new[] { new[] { 3 }, new[] { 0 } }; // the golden's fix_offsets

        using var cond = TextualInversionTraining.Conditioning(checkpoint.ClipL!, tiIds, vectors, offsets);
        using (var expected = TextGolden.Read(Golden, "ti.cond"))
        {
            double d = TextGolden.MaxAbsDiff(cond, expected);
            output.WriteLine($"ti.cond max abs {d:E2}");
            Assert.True(d <= 1e-4, $"ti.cond {d:E2}");
        }
        using var loss = TextualInversionTraining.LdmLoss(checkpoint, x0, noise, t, cond);
        using (var expected = TextGolden.Read(Golden, "ti.loss"))
        {
            double rel = Math.Abs(loss.item<float>() - expected.item<float>()) / Math.Abs(expected.item<float>());
            output.WriteLine($"ti.loss rel {rel:E2}");
            Assert.True(rel <= 1e-5, $"ti.loss rel {rel:E2}");
        }
        loss.backward();
        using var expectedGrad = TextGolden.Read(Golden, "ti.grad");
        double diff = TextGolden.MaxAbsDiff(vectors.grad!, expectedGrad);
        using var rmsT = expectedGrad.square().mean().sqrt();
        double rms = rmsT.item<float>();
        output.WriteLine($"ti.grad max abs {diff:E2} (rms {rms:E2})");
        Assert.True(diff <= 1e-3 * rms, $"ti.grad max abs {diff:E2} > 1e-3 x rms {rms:E2}");
        Assert.False(checkpoint.UNet.RecordsGradients);
    }
}

/// <summary>A1111 hypernetwork training (tiny_relu.pt in train mode) on tiny_sd1 against ext/training_sd1_golden (README §4.2 c).</summary>
public class HypernetworkTrainingGoldenTests(ITestOutputHelper output)
{
    private const string Golden = "ext/training_sd1_golden.safetensors";

    [Fact]
    public void LossAndEveryParameterGradientMatchA1111()
    {
        using var checkpoint = StableDiffusionCheckpoint.Load(TestPaths.GoldenFile("tiny_sd1.safetensors"), new CheckpointLoadOptions
        {
            ConfigPath = TestPaths.GoldenFile("tiny_sd1.config.json"),
            TokenizerPath = TestPaths.GoldenFile("clip"),
        });
        using var file = SharpDiffusion.Formats.ModelFileReader.Open(TestPaths.GoldenFile("a1111/hypernetworks/tiny_relu.pt"));
        using var hypernetwork = SharpDiffusion.Engine.Hypernetworks.Hypernetwork.Load(file);
        using var cond = TextGolden.Read(Golden, "hn.cond");
        using var x0 = TextGolden.Read(Golden, "input.x0");
        using var noise = TextGolden.Read(Golden, "input.noise");
        using var t = TextGolden.Read(Golden, "input.timesteps");

        IReadOnlyList<(string Name, TorchSharp.Modules.Parameter Parameter)> parameters;
        using (var training = new HypernetworkTraining(checkpoint.UNet, hypernetwork))
        {
            parameters = training.Parameters;
            using var loss = TextualInversionTraining.LdmLoss(checkpoint, x0, noise, t, cond);
            using var expectedLoss = TextGolden.Read(Golden, "hn.loss");
            double rel = Math.Abs(loss.item<float>() - expectedLoss.item<float>()) / Math.Abs(expectedLoss.item<float>());
            output.WriteLine($"hn.loss rel {rel:E2}");
            Assert.True(rel <= 1e-5, $"hn.loss rel {rel:E2}");
            loss.backward();
        }
        Assert.Null(checkpoint.UNet.ContextHook);
        Assert.Equal(16, parameters.Count);
        // The last k bias shifts every key by the same vector, which softmax ignores: its gradient is zero in exact
        // arithmetic and float32 noise in the golden (fp64 vs fp32 differ by 2.6x its rms). Those tensors are held to
        // ten times the golden's own float64-vs-float32 difference instead of 1e-3 x rms.
        var entries = TextGolden.Json("ext/training_sd1_golden.json").GetProperty("entries");
        double worst = 0;
        foreach (var (name, p) in parameters)
        {
            using var expected = TextGolden.Read(Golden, "hn.grad." + name);
            double diff = TextGolden.MaxAbsDiff(p.grad!, expected);
            using var rmsT = expected.square().mean().sqrt();
            double rms = rmsT.item<float>();
            double fp64Difference = entries.GetProperty("hn.grad." + name).GetProperty("observed_differences").GetProperty("fp64_vs_fp32").GetProperty("max_abs").GetDouble();
            bool floatNoise = fp64Difference > rms;
            double tolerance = floatNoise ? 10 * fp64Difference : 1e-3 * rms;
            if (!floatNoise) worst = Math.Max(worst, diff / rms);
            Assert.True(diff <= tolerance, $"{name}: max abs {diff:E2} > {tolerance:E2} (rms {rms:E2})");
        }
        Assert.Equal(2, parameters.Count(p => p.Name.EndsWith(".k.linear.2.bias", StringComparison.Ordinal)));
        output.WriteLine($"16 hypernetwork gradients, worst max abs / rms {worst:E2} (14 non-zero ones)");
    }
}
