using System.Text.Json.Nodes;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Text.Conditioners;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Png;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Pipeline;

/// <summary>
/// The SDXL refiner as A1111 1.10 runs it (sd_samplers_common.apply_refiner, sd_models_xl.get_learned_conditioning;
/// sgm's sd_xl_refiner.yaml). No upstream golden exists, so the tests hold the run to those rules: the switch at
/// the first model call whose nearest timestep t has (999 − t)/1000 ≥ switch-at, the sampler untouched across it, the
/// refiner's own conditioning (bigG alone; pooled text, original size, crop and the aesthetic score 6.0 / 2.5).
/// The tiny refiner is tiny_sdxl with its bigG moved to embedder 0, CLIP-L dropped, and the U-Net's context and
/// vector inputs cut to the refiner's widths (16 and 24 + 5·16).
/// </summary>
public class RefinerTests(ITestOutputHelper output)
{
    private const int Size = 32;

    internal static (string Model, string Config) TinyRefiner(TempDir dir)
    {
        var model = dir.File("tiny_refiner.safetensors");
        var config = dir.File("tiny_refiner.config.json");
        if (File.Exists(model)) return (model, config);
        const string clipL = "conditioner.embedders.0.", bigG = "conditioner.embedders.1.model.";
        using (var file = SafetensorsFile.Open(TestPaths.GoldenFile("tiny_sdxl.safetensors")))
        {
            var tensors = new List<TensorToWrite>();
            foreach (var t in file.Tensors)
            {
                if (t.Name.StartsWith(clipL, StringComparison.Ordinal)) continue;
                if (t.Name.StartsWith(bigG, StringComparison.Ordinal))
                {
                    tensors.Add(TensorToWrite.FromModelFile(file, t, "conditioner.embedders.0.model." + t.Name[bigG.Length..]));
                    continue;
                }
                bool context = t.Name.EndsWith("attn2.to_k.weight", StringComparison.Ordinal) || t.Name.EndsWith("attn2.to_v.weight", StringComparison.Ordinal);
                bool vector = t.Name == "model.diffusion_model.label_emb.0.0.weight";
                if (!context && !vector)
                {
                    tensors.Add(TensorToWrite.FromModelFile(file, t));
                    continue;
                }
                // Context: bigG's 16 columns (after CLIP-L's 8); vector: pooled 24 + five 16-wide embedded numbers.
                using var weight = TensorReading.Read(file, t, ScalarType.Float32);
                using var cut = (context ? weight.narrow(1, 8, 16) : weight.narrow(1, 0, 24 + 5 * 16)).contiguous();
                var values = cut.data<float>().ToArray();
                var bytes = new byte[values.Length * 4];
                Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
                tensors.Add(TensorToWrite.FromBytes(t.Name, TensorDType.F32, cut.shape, bytes));
            }
            SafetensorsWriter.Write(model, tensors);
        }
        var json = JsonNode.Parse(File.ReadAllText(TestPaths.GoldenFile("tiny_sdxl.config.json")))!;
        Inpainting.InpaintingFamiliesTests.SetUNetParameter(json, "context_dim", 16);
        Inpainting.InpaintingFamiliesTests.SetUNetParameter(json, "adm_in_channels", 24 + 5 * 16);
        json["text_encoder"] = new JsonObject { ["num_attention_heads"] = 2 };
        File.WriteAllText(config, json.ToJsonString());
        return (model, config);
    }

    private static StableDiffusionCheckpoint Load(string model, string config) =>
        StableDiffusionCheckpoint.Load(model, new CheckpointLoadOptions { ConfigPath = config, TokenizerPath = TestPaths.GoldenFile("clip") });

    private static StableDiffusionCheckpoint LoadBase() => Load(TestPaths.GoldenFile("tiny_sdxl.safetensors"), TestPaths.GoldenFile("tiny_sdxl.config.json"));

    private static GenerationRequest Request(double switchAt = 0.5) => new()
    {
        Prompt = "a photograph of an astronaut riding a horse",
        NegativePrompt = "blurry",
        Steps = 10,
        Sampler = "Euler",
        CfgScale = 7,
        Seed = 4242,
        Width = Size,
        Height = Size,
        RefinerSwitchAt = switchAt,
    };

    [Fact]
    public void TheRefinerTakesOverAtA1111sTimestep()
    {
        var schedule = DiscreteSchedule.ScaledLinear();
        var stage = new RefinerStage(null!, null!, null!, 0.8);
        // (999 − t)/1000 ≥ 0.8  ⇔  t ≤ 199
        Assert.True(stage.TakesOverAt(schedule, schedule.Sigmas[199]));
        Assert.False(stage.TakesOverAt(schedule, schedule.Sigmas[200]));
        Assert.True(stage.TakesOverAt(schedule, schedule.Sigmas[0]));
        // Between two table entries the nearer one counts.
        double between = 0.49 * schedule.Sigmas[199] + 0.51 * schedule.Sigmas[200];
        Assert.False(stage.TakesOverAt(schedule, between));
        Assert.False(new RefinerStage(null!, null!, null!, 1.0).TakesOverAt(schedule, schedule.Sigmas[0])); // 1 never switches
    }

    [Fact]
    public void TheRefinersVectorIsPooledTextSizesCropAndTheAestheticScore()
    {
        using var dir = new TempDir();
        var (model, config) = TinyRefiner(dir);
        using var refiner = Load(model, config);
        Assert.Equal("SDXL refiner", refiner.Architecture.DisplayName);
        var text = refiner.CreateTextConditioner();
        var sizes = new ImageSizeConditioning(48, 40, 3, 5, 48, 40);
        using var cond = text.Encode(new[] { "a cat" }, isNegative: false, sizes);
        using var uncond = text.Encode(new[] { "" }, isNegative: true, sizes);
        Assert.Equal(new long[] { 1, 77, 16 }, cond.CrossAttention.shape);
        Assert.Equal(new long[] { 1, 24 + 5 * 16 }, cond.Vector!.shape);

        // sgm's Timestep(16) of each number, written out here: cos first, freqs exp(−ln(10000)·i/8).
        static float[] Embed(params double[] numbers) => numbers.SelectMany(v =>
        {
            var freqs = Enumerable.Range(0, 8).Select(i => (float)Math.Exp(-Math.Log(10000) * i / 8)).ToArray();
            return freqs.Select(f => MathF.Cos((float)v * f)).Concat(freqs.Select(f => MathF.Sin((float)v * f)));
        }).ToArray();
        var positive = cond.Vector.narrow(1, 24, 80).data<float>().ToArray();
        var negative = uncond.Vector!.narrow(1, 24, 80).data<float>().ToArray();
        var expectedPositive = Embed(48, 40, 3, 5, 6.0);
        var expectedNegative = Embed(48, 40, 3, 5, 2.5);
        for (int i = 0; i < 80; i++)
        {
            Assert.Equal(expectedPositive[i], positive[i], 5e-6f);
            Assert.Equal(expectedNegative[i], negative[i], 5e-6f);
        }
        // An empty negative prompt zeroes the text parts (sgm force_zero_embeddings=['txt']), not the numbers.
        Assert.Equal(0f, uncond.CrossAttention.abs().max().item<float>());
        Assert.Equal(0f, uncond.Vector.narrow(1, 0, 24).abs().max().item<float>());
        Assert.True(cond.Vector.narrow(1, 0, 24).abs().max().item<float>() > 0);
    }

    [Fact]
    public void TheSamplerGoesOnWithTheRefinerFromTheSwitchStep()
    {
        using var dir = new TempDir();
        var (refinerPath, refinerConfig) = TinyRefiner(dir);
        using var model = LoadBase();
        using var refiner = Load(refinerPath, refinerConfig);
        var request = Request(0.5);

        var baseSteps = new List<(double Sigma, Tensor X, Tensor Denoised)>();
        using var alone = ImageGenerator.Generate(model, request, s => baseSteps.Add((s.Sigma, s.X.clone().DetachFromDisposeScope(), s.Denoised.clone().DetachFromDisposeScope())));
        var refinedSteps = new List<(double Sigma, Tensor X, Tensor Denoised)>();
        using var refined = ImageGenerator.Generate(model, request, s => refinedSteps.Add((s.Sigma, s.X.clone().DetachFromDisposeScope(), s.Denoised.clone().DetachFromDisposeScope())), refiner: refiner);
        using var scope = NewDisposeScope();
        foreach (var (_, x, d) in baseSteps.Concat(refinedSteps)) { scope.Attach(x); scope.Attach(d); }

        Assert.False(alone.Refined);
        Assert.True(refined.Refined);
        var schedule = model.CreateDenoiser().Schedule;
        var probe = new RefinerStage(null!, null!, null!, 0.5);
        int switchStep = refinedSteps.FindIndex(s => probe.TakesOverAt(schedule, s.Sigma));
        output.WriteLine($"switch at step {switchStep} of {refinedSteps.Count} (sigma {refinedSteps[switchStep].Sigma:F4})");
        Assert.InRange(switchStep, 1, refinedSteps.Count - 2);

        // Before the switch: the base model's run, bit for bit.
        for (int i = 0; i < switchStep; i++)
        {
            Assert.Equal(0.0, TensorAssert.MaxAbsDiff(baseSteps[i].X, refinedSteps[i].X));
            Assert.Equal(0.0, TensorAssert.MaxAbsDiff(baseSteps[i].Denoised, refinedSteps[i].Denoised));
        }
        // At the switch: the same x (the sampler went on), denoised by the refiner with its own conditioning.
        Assert.Equal(0.0, TensorAssert.MaxAbsDiff(baseSteps[switchStep].X, refinedSteps[switchStep].X));
        var text = refiner.CreateTextConditioner();
        var sizes = ImageSizeConditioning.ForImage(Size, Size);
        using var cond = text.Encode(new[] { request.Prompt }, isNegative: false, sizes);
        using var uncond = text.Encode(new[] { request.NegativePrompt }, isNegative: true, sizes);
        using var cfg = new CfgDenoiser(refiner.CreateDenoiser(), cond, uncond, request.CfgScale);
        using var expected = cfg.Denoise(refinedSteps[switchStep].X, refinedSteps[switchStep].Sigma);
        TensorAssert.CloseRelativeToRms(expected, refinedSteps[switchStep].Denoised, 1e-6, "the refiner's first denoised");
        Assert.True(TensorAssert.MaxAbsDiff(baseSteps[switchStep].Denoised, refinedSteps[switchStep].Denoised) > 1e-3);
        Assert.True(TensorAssert.MaxAbsDiff(alone.Latents, refined.Latents) > 1e-3);
    }

    [Fact]
    public void WithHiresFixTheRefinerRunsInTheSecondPassOnly()
    {
        using var dir = new TempDir();
        var (refinerPath, refinerConfig) = TinyRefiner(dir);
        using var model = LoadBase();
        using var refiner = Load(refinerPath, refinerConfig);
        var request = Request(0.6) with { HiresScale = 2, HiresSteps = 6, HiresDenoise = 0.7 };
        var firstPass = new List<Tensor>();
        using (var plain = ImageGenerator.Generate(model, request with { HiresScale = null }, s => firstPass.Add(s.Denoised.clone().DetachFromDisposeScope())))
            Assert.False(plain.Refined);
        var steps = new List<(double Sigma, Tensor Denoised)>();
        using var hires = ImageGenerator.Generate(model, request, s => steps.Add((s.Sigma, s.Denoised.clone().DetachFromDisposeScope())), refiner: refiner);
        using var scope = NewDisposeScope();
        foreach (var t in firstPass) scope.Attach(t);
        foreach (var (_, d) in steps) scope.Attach(d);

        Assert.True(hires.Refined);
        Assert.Equal(2 * Size, hires.Width);
        // A1111's default hires_fix_refiner_pass "second pass": the first pass is the model's alone, even below the switch.
        Assert.Equal(request.Steps, firstPass.Count);
        for (int i = 0; i < firstPass.Count; i++) Assert.Equal(0.0, TensorAssert.MaxAbsDiff(firstPass[i], steps[i].Denoised));
        var schedule = model.CreateDenoiser().Schedule;
        var probe = new RefinerStage(null!, null!, null!, 0.6);
        Assert.Contains(Enumerable.Range(0, firstPass.Count), i => probe.TakesOverAt(schedule, steps[i].Sigma)); // it went past the switch level
    }

    [Fact]
    public void CommandLineWritesA1111sRefinerFieldsAndFromPngRunsThemAgain()
    {
        using var dir = new TempDir();
        var (refinerPath, refinerConfig) = TinyRefiner(dir);
        var basePath = dir.File("tiny_sdxl.safetensors");
        File.Copy(TestPaths.GoldenFile("tiny_sdxl.safetensors"), basePath);
        string[] common = ["--config", TestPaths.GoldenFile("tiny_sdxl.config.json"), "--tokenizer", TestPaths.GoldenFile("clip"), "--refiner-config", refinerConfig];
        var first = dir.File("first.png");
        var run = CliHarness.Run(["generate", "--model", basePath, .. common, "--prompt", "a red apple", "--steps", "6", "--sampler", "DPM++ 2M",
            "--seed", "9", "--width", "32", "--height", "32", "--refiner", "tiny_refiner", "--refiner-switch-at", "0.6", "--out", first]);
        Assert.True(run.Code == 0, run.Stderr);
        var parameters = PngTextChunks.Get(PngTextChunks.Read(first), "parameters")!;
        output.WriteLine(parameters);
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(refinerPath))).ToLowerInvariant()[..10];
        Assert.EndsWith($", Refiner: tiny_refiner [{hash}], Refiner switch at: 0.6", parameters);
        Assert.Contains("Model: tiny_sdxl,", parameters); // the base model stays the infotext's model

        var again = dir.File("again.png");
        run = CliHarness.Run(["generate", "--model", basePath, .. common, "--from-png", first, "--out", again]);
        Assert.True(run.Code == 0, run.Stderr);
        Assert.Equal(parameters, PngTextChunks.Get(PngTextChunks.Read(again), "parameters"));
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(again));
    }

    [Fact]
    public void ARefinerOfAnotherLatentSpaceIsOneLineAndExitTwo()
    {
        using var dir = new TempDir();
        var run = CliHarness.Run(["generate", "--model", TestPaths.GoldenFile("tiny_sd1.safetensors"), "--config", TestPaths.GoldenFile("tiny_sd1.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--prompt", "x", "--steps", "2", "--width", "32", "--height", "32",
            "--models-dir", Directory.CreateDirectory(dir.File("models")).FullName,
            "--refiner", TestPaths.GoldenFile("tiny_sdxl.safetensors"), "--refiner-config", TestPaths.GoldenFile("tiny_sdxl.config.json"), "--out", dir.File("o.png")]);
        Assert.True(run.Code == 2, run.Stderr);
        Assert.Contains("refiner tiny_sdxl.safetensors (SDXL): its latents are not those of this SD1 model", run.Stderr);
        Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.False(File.Exists(dir.File("o.png")));
    }

    [Fact]
    public void ARefinerWithATimestepSamplerIsOneLineAndExitTwo()
    {
        using var dir = new TempDir();
        var (refinerPath, refinerConfig) = TinyRefiner(dir);
        var run = CliHarness.Run(["generate", "--model", TestPaths.GoldenFile("tiny_sdxl.safetensors"), "--config", TestPaths.GoldenFile("tiny_sdxl.config.json"),
            "--tokenizer", TestPaths.GoldenFile("clip"), "--prompt", "x", "--sampler", "PLMS", "--models-dir", Directory.CreateDirectory(dir.File("models")).FullName, "--steps", "4", "--width", "32", "--height", "32",
            "--refiner", refinerPath, "--refiner-config", refinerConfig, "--out", dir.File("o.png")]);
        Assert.True(run.Code == 2, run.Stderr);
        Assert.Contains("does not support the refiner", run.Stderr);
        Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.False(File.Exists(dir.File("o.png")));
    }
}
