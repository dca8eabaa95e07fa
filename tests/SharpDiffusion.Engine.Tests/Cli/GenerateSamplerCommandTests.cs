using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Formats.Safetensors;
using SharpDiffusion.Png;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Cli;

/// <summary><c>sharpdiffusion generate</c> with A1111 1.10's added samplers and schedule types against samplers/tiny_sd1_samplers.</summary>
public class GenerateSamplerCommandTests
{
    private static readonly string Model = TestPaths.GoldenFile("tiny_sd1.safetensors");
    private static readonly string Config = TestPaths.GoldenFile("tiny_sd1.config.json");
    private static readonly string Vocab = TestPaths.GoldenFile("clip");

    private static (int Code, string Stdout, string Stderr) Generate(params string[] extra)
    {
        var args = new List<string> { "generate", "--model", Model, "--config", Config, "--tokenizer", Vocab, "--width", "16", "--height", "16",
            "--prompt", "a photograph of an astronaut riding a horse", "--steps", "8", "--cfg", "7", "--seed", "42" };
        args.AddRange(extra);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(args.ToArray(), stdout, stderr, stderrIsTerminal: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static Tensor ReadLatents(string path)
    {
        using var saved = SafetensorsFile.Open(path);
        return Weights.TensorReading.Read(saved, Assert.Single(saved.Tensors));
    }

    [Theory]
    [InlineData("DPM++ 2M SDE", null, "dpmpp_2m_sde", "Exponential")]
    [InlineData("dpmpp_sde", null, "dpmpp_sde", "Karras")]
    [InlineData("Euler", "Beta", "euler_beta", "Beta")]
    [InlineData("UniPC", null, "unipc", "Automatic")]
    public void SaveLatentsEqualsTheA1111Golden(string sampler, string? schedule, string run, string label)
    {
        using var dir = new TempDir();
        var png = dir.File("out.png");
        var latents = dir.File("latents.safetensors");
        var extra = new List<string> { "--sampler", sampler, "--out", png, "--save-latents", latents };
        if (schedule is not null) extra.AddRange(new[] { "--schedule", schedule });
        var (code, _, stderr) = Generate(extra.ToArray());
        Assert.True(code == 0, stderr);

        var info = A1111Infotext.Parse(PngTextChunks.Get(PngTextChunks.Read(png), "parameters")!);
        Assert.Equal(SamplerRegistry.Create(sampler).Name, info.Sampler);
        Assert.Equal(label, info.ScheduleType);
        if (label == "Beta") Assert.Equal("0.6", info["Beta schedule alpha"]);

        using var scope = NewDisposeScope();
        using var golden = GoldenTensors.Open("samplers/tiny_sd1_samplers.safetensors");
        // An SDE run whose own float32 sigmas differ by an ulp from A1111's queries other Brownian grid points
        // (samplers README §5.5, §6): then the README's 2e-2 × rms applies.
        double tolerance = 1e-3;
        if (golden.Has($"sample.{run}.brownian_w"))
        {
            var spec = A1111SamplerGoldenTests.ReadRun(GoldenModel.Sd1, run);
            var own = SamplerRegistry.Create(spec.Sampler).Sigmas(DiscreteSchedule.ScaledLinear(), spec.Steps, spec.Schedule);
            if (!golden.Doubles($"sample.{run}.sigmas").SequenceEqual(own)) tolerance = 2e-2;
        }
        TensorAssert.CloseRelativeToRms(golden.Get($"sample.{run}.latents"), ReadLatents(latents), tolerance, run + " CLI latents");
    }

    [Theory]
    [InlineData("cheap", 8)]
    [InlineData("taesd", 64)]
    public void PreviewsAreWrittenEveryNSteps(string method, int size)
    {
        using var dir = new TempDir();
        var models = Directory.CreateDirectory(Path.Combine(dir.Path, "models", "VAE-approx")).Parent!.FullName;
        File.Copy(TestPaths.GoldenFile("taesd/taesd_decoder.pth"), Path.Combine(models, "VAE-approx", "taesd_decoder.pth"));
        var pattern = Path.Combine(dir.Path, "preview-{step}.png");
        var (code, _, stderr) = Generate("--sampler", "DPM++ 2M SDE", "--preview-every", "3", "--preview", pattern,
            "--preview-method", method, "--models-dir", models, "--out", dir.File("out.png"));
        Assert.True(code == 0, stderr);
        var written = Directory.GetFiles(dir.Path, "preview-*.png").Select(Path.GetFileName).Order().ToArray();
        Assert.Equal(new[] { "preview-3.png", "preview-6.png" }, written);
        // The tiny model's latents are 8x8 (16 px): cheap previews are latent-sized, TAESD upsamples by 8.
        var bytes = File.ReadAllBytes(Path.Combine(dir.Path, "preview-6.png"));
        Assert.Equal(size, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
    }

    [Fact]
    public void TaesdFinalDecodeIsTheTaesdImageOfTheFinalLatentsAndNotedInTheInfotext()
    {
        using var dir = new TempDir();
        var models = Directory.CreateDirectory(Path.Combine(dir.Path, "models", "VAE-approx")).Parent!.FullName;
        File.Copy(TestPaths.GoldenFile("taesd/taesd_decoder.pth"), Path.Combine(models, "VAE-approx", "taesd_decoder.pth"));
        var png = dir.File("taesd.png");
        var latentsFile = dir.File("latents.safetensors");
        var (code, _, stderr) = Generate("--sampler", "Euler", "--decoder", "taesd", "--models-dir", models, "--out", png, "--save-latents", latentsFile);
        Assert.True(code == 0, stderr);

        var info = A1111Infotext.Parse(PngTextChunks.Get(PngTextChunks.Read(png), "parameters")!);
        Assert.Equal("TAESD", info["VAE Decoder"]);
        Assert.Equal((16, 16), info.Size); // the requested size, as A1111 writes it

        // The expected image from the README's formula: floor(255 · clamp((decoder(latents)·2 − 1 + 1) / 2, 0, 1)).
        using var scope = NewDisposeScope();
        using var decoder = Engine.Previews.Taesd.Load(TestPaths.GoldenFile("taesd/taesd_decoder.pth"));
        var latents = ReadLatents(latentsFile);
        var image = (decoder.Forward(latents) * 2 - 1 + 1) / 2;
        var expected = image.clamp(0, 1).mul(255).floor().to(ScalarType.Byte)[0].permute(1, 2, 0).contiguous().data<byte>().ToArray();
        // TAESD upsamples the tiny model's 8x8 latents by 8 (its VAE by 2): a 64x64 image.
        var pixels = Engine.Pipeline.InitImageLoader.LoadRgb(png, 64, 64);
        Assert.Equal(expected, pixels);
        Assert.True(pixels.Distinct().Count() > 8, "the TAESD image of a real run is not flat");

        // --from-png takes the decoder from the infotext, as A1111 applies "VAE Decoder" on paste.
        var again = dir.File("again.png");
        (code, _, stderr) = Generate("--from-png", png, "--models-dir", models, "--out", again);
        Assert.True(code == 0, stderr);
        Assert.Equal(pixels, Engine.Pipeline.InitImageLoader.LoadRgb(again, 64, 64));

        // Without it the VAE decodes: 16x16, no note.
        var vae = dir.File("vae.png");
        (code, _, stderr) = Generate("--sampler", "Euler", "--out", vae);
        Assert.True(code == 0, stderr);
        Assert.Null(A1111Infotext.Parse(PngTextChunks.Get(PngTextChunks.Read(vae), "parameters")!)["VAE Decoder"]);
    }

    [Theory]
    [InlineData("taesd", "--decoder taesd needs taesd_decoder.pth")]
    [InlineData("tiny", "unknown --decoder 'tiny': vae or taesd")]
    public void BadDecoderIsAUsageError(string decoder, string message)
    {
        using var dir = new TempDir();
        var (code, _, stderr) = Generate("--sampler", "Euler", "--decoder", decoder, "--out", dir.File("out.png"));
        Assert.Equal(2, code);
        Assert.Contains(message, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.False(File.Exists(dir.File("out.png")));
    }

    [Fact]
    public void TaesdPreviewWithoutItsFileIsAUsageError()
    {
        using var dir = new TempDir();
        var (code, _, stderr) = Generate("--sampler", "Euler", "--preview-every", "1", "--preview", dir.File("p.png"), "--preview-method", "taesd",
            "--out", dir.File("out.png"));
        Assert.Equal(2, code);
        Assert.Contains("taesd_decoder.pth", stderr);
        Assert.False(File.Exists(dir.File("out.png")));
    }

    [Fact]
    public void UnknownScheduleTypeIsOneLineAndExitCode2()
    {
        using var dir = new TempDir();
        var (code, _, stderr) = Generate("--sampler", "Euler", "--schedule", "cosine", "--out", dir.File("x.png"));
        Assert.Equal(2, code);
        Assert.Contains("unknown schedule type 'cosine'", stderr);
        Assert.Contains("SGM Uniform", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.False(File.Exists(dir.File("x.png")));
    }
}
