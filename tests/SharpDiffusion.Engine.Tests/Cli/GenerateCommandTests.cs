using static SharpDiffusion.Engine.Tests.CliHarness;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Png;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Cli;

/// <summary><c>sharpdiffusion generate</c> on the tiny golden models: PNG + A1111 parameters, re-runs, and bad input.</summary>
public class GenerateCommandTests
{
    private static readonly string Model = TestPaths.GoldenFile("tiny_sd1.safetensors");
    private static readonly string Config = TestPaths.GoldenFile("tiny_sd1.config.json");
    private static readonly string Vocab = TestPaths.GoldenFile("clip");

    /// <summary>A generate command line for the tiny model at 16x16; options in <paramref name="extra"/> replace the defaults.</summary>
    private static string[] Tiny(params string[] extra)
    {
        var args = new List<string> { "generate", "--model", Model, "--config", Config, "--tokenizer", Vocab };
        foreach (var (option, value) in new[] { ("--width", "16"), ("--height", "16") })
            if (!extra.Contains(option)) args.AddRange(new[] { option, value });
        return args.Concat(extra).ToArray();
    }

    [Fact]
    public void WritesAPngWithA1111ParametersAndTheGoldenLatents()
    {
        using var dir = new TempDir();
        var png = dir.File("out.png");
        var latents = dir.File("latents.safetensors");
        var (code, stdout, stderr) = Run(Tiny("--prompt", "a photograph of an astronaut riding a horse", "--steps", "8",
            "--sampler", "Euler", "--cfg", "7", "--seed", "42", "--out", png, "--save-latents", latents));
        Assert.True(code == 0, stderr);
        Assert.Equal(png, stdout.Trim());

        var parameters = PngTextChunks.Get(PngTextChunks.Read(png), "parameters");
        // The model hash is the first 10 hex digits of the checkpoint's sha256 (tiny_sd1.config.json checkpoint_sha256).
        Assert.Equal("a photograph of an astronaut riding a horse\n"
            + "Steps: 8, Sampler: Euler, Schedule type: Automatic, CFG scale: 7, Seed: 42, Size: 16x16, Model hash: 3b956ae8fc, Model: tiny_sd1",
            parameters);

        using var saved = SafetensorsFile.Open(latents);
        var info = Assert.Single(saved.Tensors);
        Assert.Equal("latents", info.Name);
        Assert.Equal(new long[] { 1, 4, 8, 8 }, info.Shape);
        using var scope = NewDisposeScope();
        var actual = Weights.TensorReading.Read(saved, info);
        using var golden = GoldenTensors.Open("tiny_sd1_golden.safetensors");
        TensorAssert.CloseRelativeToRms(golden.Get("sample.euler.latents"), actual, 1e-3, "CLI latents");
    }

    [Fact]
    public void FromPngReproducesTheSameImage()
    {
        using var dir = new TempDir();
        var first = dir.File("first.png");
        var again = dir.File("again.png");
        var r1 = Run(Tiny("--prompt", "a (red:1.2) fox, [snow]", "--negative", "blurry", "--steps", "4", "--sampler", "DPM++ 2M",
            "--schedule", "karras", "--seed", "7", "--out", first));
        Assert.True(r1.Code == 0, r1.Stderr);
        var r2 = Run("generate", "--model", Model, "--config", Config, "--tokenizer", Vocab, "--from-png", first, "--out", again);
        Assert.True(r2.Code == 0, r2.Stderr);
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(again));
        var info = A1111Infotext.Parse(PngTextChunks.Get(PngTextChunks.Read(again), "parameters")!);
        Assert.Equal("a (red:1.2) fox, [snow]", info.Prompt);
        Assert.Equal("blurry", info.NegativePrompt);
        Assert.Equal("DPM++ 2M", info.Sampler);
        Assert.Equal("Karras", info.ScheduleType);
        Assert.Equal(7L, info.Seed);
    }

    [Fact]
    public void BatchesUseSeedPlusIndex()
    {
        using var dir = new TempDir();
        var (code, stdout, stderr) = Run(Tiny("--prompt", "a cat", "--steps", "2", "--seed", "100", "--batch", "2", "--out", dir.Path));
        Assert.True(code == 0, stderr);
        var files = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(new[] { "00000-100.png", "00001-101.png" }, files.Select(Path.GetFileName));
        var seeds = files.Select(f => A1111Infotext.Parse(PngTextChunks.Get(PngTextChunks.Read(f), "parameters")!).Seed).ToArray();
        Assert.Equal(new long?[] { 100, 101 }, seeds);
    }

    [Theory]
    [InlineData("--sampler", "Euler b", "unknown sampler 'Euler b'")]
    [InlineData("--width", "18", "multiples of 4")]
    [InlineData("--rng", "gpu2", "gpu2")]
    [InlineData("--precision", "fp16", "fp16")]
    public void BadParametersFailWithOneLineAndNoOutput(string option, string value, string expected)
    {
        using var dir = new TempDir();
        var png = dir.File("out.png");
        var (code, _, stderr) = Run(Tiny("--prompt", "x", "--steps", "2", option, value, "--out", png));
        Assert.Equal(2, code);
        Assert.Contains(expected, stderr);
        Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }

    [Fact]
    public void MissingVocabularyIsAUsageErrorNamingWhereItLooked()
    {
        using var dir = new TempDir();
        var empty = Directory.CreateDirectory(dir.File("no-vocab")).FullName;
        var (code, _, stderr) = Run("generate", "--model", Model, "--config", Config, "--tokenizer", empty, "--prompt", "x",
            "--width", "16", "--height", "16", "--out", dir.File("out.png"));
        Assert.Equal(2, code);
        Assert.Contains("no-vocab", stderr);
        Assert.Contains("vocab", stderr);
        Assert.False(File.Exists(dir.File("out.png")));
    }

    [Fact]
    public void ALoraPassedAsTheModelIsRefused()
    {
        using var dir = new TempDir();
        var lora = dir.File("detail.safetensors");
        var zeros8x32 = new byte[8 * 32 * 4];
        SafetensorsWriter.Write(lora, new[]
        {
            TensorToWrite.FromBytes("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", TensorDType.F32, new long[] { 8, 32 }, zeros8x32),
            TensorToWrite.FromBytes("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", TensorDType.F32, new long[] { 32, 8 }, zeros8x32),
            TensorToWrite.FromBytes("lora_unet_down_blocks_0_attentions_0_proj_in.alpha", TensorDType.F32, Array.Empty<long>(), new byte[4]),
        });
        var (code, _, stderr) = Run("generate", "--model", lora, "--tokenizer", Vocab, "--prompt", "x", "--out", dir.File("out.png"));
        Assert.Equal(2, code);
        Assert.Contains("a LoRA, not a checkpoint", stderr);
        Assert.Contains(lora, stderr);
        Assert.False(File.Exists(dir.File("out.png")));
    }

    [Fact]
    public void Sd2VPredictionModelGeneratesFromItsConfig()
    {
        using var dir = new TempDir();
        var png = dir.File("fox.png");
        var latents = dir.File("fox.safetensors");
        var (code, _, stderr) = Run("generate", "--model", TestPaths.GoldenFile("tiny_sd2v.safetensors"), "--config",
            TestPaths.GoldenFile("tiny_sd2v.config.json"), "--tokenizer", Vocab, "--prompt", "a watercolor painting of a red fox in the snow",
            "--steps", "8", "--sampler", "euler", "--cfg", "6.5", "--seed", "31337", "--width", "16", "--height", "16",
            "--out", png, "--save-latents", latents);
        Assert.True(code == 0, stderr);
        using var saved = SafetensorsFile.Open(latents);
        using var scope = NewDisposeScope();
        var actual = Weights.TensorReading.Read(saved, saved.Tensors[0]);
        using var golden = GoldenTensors.Open("tiny_sd2v_golden.safetensors");
        TensorAssert.CloseRelativeToRms(golden.Get("sample.euler.latents"), actual, 1e-3, "SD2-v CLI latents");
    }

    [Fact]
    public void Img2ImgStartsFromTheInitImage()
    {
        using var dir = new TempDir();
        var init = dir.File("init.png");
        // A 32x32 gradient: SkiaSharp decodes it and resizes it to the 16x16 output.
        var rgb = new byte[32 * 32 * 3];
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
            {
                int i = (y * 32 + x) * 3;
                rgb[i] = (byte)(x * 8);
                rgb[i + 1] = (byte)(y * 8);
                rgb[i + 2] = 128;
            }
        PngEncoder.Save(init, rgb, 32, 32);

        string Run2(string name, string strength)
        {
            var output = dir.File(name);
            var (code, _, stderr) = Run(Tiny("--prompt", "a cat", "--steps", "10", "--sampler", "Euler", "--seed", "5",
                "--init-image", init, "--strength", strength, "--out", output, "--save-latents", output + ".safetensors"));
            Assert.True(code == 0, stderr);
            return output;
        }
        var weak = Run2("weak.png", "0.2");
        var strong = Run2("strong.png", "0.9");
        var info = A1111Infotext.Parse(PngTextChunks.Get(PngTextChunks.Read(weak), "parameters")!);
        Assert.Equal("0.2", info["Denoising strength"]);

        // At low strength the result stays near the init image's latents; at high strength it moves much further.
        using var scope = NewDisposeScope();
        var checkpoint = SharpDiffusion.Engine.Pipeline.StableDiffusionCheckpoint.Load(Model, new SharpDiffusion.Engine.Pipeline.CheckpointLoadOptions { ConfigPath = Config, TokenizerPath = Vocab });
        using (checkpoint)
        {
            var initLatents = checkpoint.Vae.EncodeToLatents(SharpDiffusion.Engine.Pipeline.ImageGenerator.RgbToTensor(
                SharpDiffusion.Engine.Pipeline.InitImageLoader.LoadRgb(init, 16, 16), 16, 16));
            double Distance(string png)
            {
                using var f = SafetensorsFile.Open(png + ".safetensors");
                var latents = Weights.TensorReading.Read(f, f.Tensors[0]);
                return (latents - initLatents).pow(2).mean().sqrt().item<float>();
            }
            double near = Distance(weak), far = Distance(strong);
            Assert.True(near < far / 2, $"strength 0.2 moved {near}, strength 0.9 moved {far}");
        }
    }

    /// <summary>The tiny checkpoint's VAE as a standalone file with bare keys (decoder output bias shifted) and a loss key.</summary>
    private static void WriteShiftedVae(string path)
    {
        using var source = SafetensorsFile.Open(Model);
        const string prefix = "first_stage_model.";
        var tensors = new List<TensorToWrite>();
        foreach (var t in source.Tensors.Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal)))
        {
            var bytes = new byte[t.ByteLength];
            source.ReadTensorData(t, bytes);
            string name = t.Name[prefix.Length..];
            if (name == "decoder.conv_out.bias")
            {
                var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
                for (int i = 0; i < values.Length; i++) values[i] += 0.5f;
            }
            tensors.Add(TensorToWrite.FromBytes(name, t.DType, t.Shape, bytes));
        }
        tensors.Add(TensorToWrite.FromBytes("loss.logvar", TensorDType.F32, Array.Empty<long>(), new byte[4]));
        SafetensorsWriter.Write(path, tensors);
    }

    [Fact]
    public void VaeOverrideAndA1111AutoPairing()
    {
        using var dir = new TempDir();
        var vae = dir.File("shifted.vae.safetensors");
        WriteShiftedVae(vae);
        string[] Common(string model, string output) => new[] { "generate", "--model", model, "--config", Config, "--tokenizer", Vocab,
            "--prompt", "a cat", "--steps", "2", "--seed", "3", "--width", "16", "--height", "16", "--out", output };

        var plain = dir.File("plain.png");
        Assert.Equal(0, Run(Common(Model, plain)).Code);
        var withVae = dir.File("with-vae.png");
        var r = Run(Common(Model, withVae).Concat(new[] { "--vae", vae }).ToArray());
        Assert.True(r.Code == 0, r.Stderr);
        var info = A1111Infotext.Parse(PngTextChunks.Get(PngTextChunks.Read(withVae), "parameters")!);
        Assert.Equal("shifted.vae.safetensors", info["VAE"]);
        Assert.Equal(Hashing.ModelHashes.Compute(vae).Short, info["VAE hash"]);
        Assert.NotEqual(File.ReadAllBytes(plain), File.ReadAllBytes(withVae));

        // A1111 pairs NAME.vae.safetensors with NAME.safetensors by itself.
        var paired = Directory.CreateDirectory(dir.File("paired")).FullName;
        File.Copy(Model, Path.Combine(paired, "tiny.safetensors"));
        File.Copy(vae, Path.Combine(paired, "tiny.vae.safetensors"));
        var auto = dir.File("auto.png");
        var a = Run(Common(Path.Combine(paired, "tiny.safetensors"), auto));
        Assert.True(a.Code == 0, a.Stderr);
        Assert.Equal("tiny.vae.safetensors", A1111Infotext.Parse(PngTextChunks.Get(PngTextChunks.Read(auto), "parameters")!)["VAE"]);
        Assert.Equal(PngTextChunks.Read(withVae).Count, PngTextChunks.Read(auto).Count);

        // Weights that are not this model's VAE: one line, exit 2, no image.
        var wrong = dir.File("wrong.png");
        var bad = Run(Common(Model, wrong).Concat(new[] { "--vae", TestPaths.GoldenFile("tiny_sd2v.safetensors") }).ToArray());
        Assert.Equal(2, bad.Code);
        Assert.Contains("tiny_sd2v.safetensors", bad.Stderr);
        Assert.False(File.Exists(wrong));
    }
}
