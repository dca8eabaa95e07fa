using System.Text.Json.Nodes;
using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Tests.Sampling;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Inpainting;

/// <summary>
/// SD 2.x and SDXL inpainting checkpoints (U-Net <c>in_channels</c> 9, as SD1's, golden-verified in
/// <see cref="InpaintGenerationTests"/>). No upstream golden exists for them, so these tests hold them to an identity:
/// a 9-channel U-Net whose mask and masked-image input weights are zero computes exactly what the 4-channel U-Net
/// with the same other weights computes, and A1111 applies the latent mask to both kinds, so the whole inpainting
/// runs must agree. With non-zero extra weights the runs must differ: the conditioning reaches the U-Net.
/// </summary>
public class InpaintingFamiliesTests(ITestOutputHelper output)
{
    private const int Size = 32;

    public static TheoryData<string> Families => new() { "tiny_sd2v", "tiny_sdxl" };

    /// <summary>
    /// A copy of a tiny checkpoint with a 9-channel <c>input_blocks.0.0</c>: the first 4 input channels keep the
    /// latents' weights, channels 4..8 (mask, masked-image latent) get <paramref name="extraScale"/> times a seeded
    /// normal draw (0: an inpainting model that ignores its conditioning).
    /// </summary>
    internal static (string Model, string Config) NineChannelCopy(TempDir dir, string name, double extraScale)
    {
        var source = TestPaths.GoldenFile(name + ".safetensors");
        var model = dir.File($"{name}_inpaint_{extraScale}.safetensors");
        const string convIn = "model.diffusion_model.input_blocks.0.0.weight";
        using (var file = SafetensorsFile.Open(source))
        {
            var tensors = file.Tensors.Select(t =>
            {
                if (t.Name != convIn) return TensorToWrite.FromModelFile(file, t);
                using var weight = TensorReading.Read(file, t, ScalarType.Float32);
                using var generator = new TorchSharp.torch.Generator(1234);
                using var extra = randn(new[] { weight.shape[0], 5, weight.shape[2], weight.shape[3] }, generator: generator) * extraScale;
                using var wide = cat(new[] { weight, extra }, 1).contiguous();
                var values = wide.data<float>().ToArray();
                var bytes = new byte[values.Length * 4];
                Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
                return TensorToWrite.FromBytes(t.Name, TensorDType.F32, wide.shape, bytes);
            }).ToList();
            SafetensorsWriter.Write(model, tensors);
        }
        var config = JsonNode.Parse(File.ReadAllText(TestPaths.GoldenFile(name + ".config.json")))!;
        SetUNetParameter(config, "in_channels", 9);
        var configPath = dir.File($"{name}_inpaint_{extraScale}.config.json");
        File.WriteAllText(configPath, config.ToJsonString());
        return (model, configPath);
    }

    /// <summary>Sets a U-Net parameter everywhere our JSON configs hold it: the summary and the LDM/sgm config tree (any object with model_channels).</summary>
    internal static void SetUNetParameter(JsonNode node, string name, int value)
    {
        if (node is JsonObject obj)
        {
            if (obj.ContainsKey("model_channels") && obj.ContainsKey(name)) obj[name] = value;
            foreach (var (_, child) in obj.ToList())
                if (child != null) SetUNetParameter(child, name, value);
        }
        else if (node is JsonArray array)
        {
            foreach (var child in array)
                if (child != null) SetUNetParameter(child, name, value);
        }
    }

    private static (byte[] Image, byte[] Mask) ImageAndMask()
    {
        var image = new byte[Size * Size * 3];
        var mask = new byte[Size * Size * 3];
        for (int y = 0; y < Size; y++)
            for (int x = 0; x < Size; x++)
            {
                int i = (y * Size + x) * 3;
                (image[i], image[i + 1], image[i + 2]) = ((byte)(x * 8), (byte)(y * 8), (byte)((x + y) * 4));
                byte m = x >= 8 && x < 24 && y >= 10 && y < 26 ? (byte)255 : (byte)0;
                (mask[i], mask[i + 1], mask[i + 2]) = (m, m, m);
            }
        return (image, mask);
    }

    private static Tensor Inpaint(string model, string config)
    {
        using var checkpoint = StableDiffusionCheckpoint.Load(model, new CheckpointLoadOptions { ConfigPath = config, TokenizerPath = TestPaths.GoldenFile("clip") });
        var (image, mask) = ImageAndMask();
        using var result = ImageGenerator.Generate(checkpoint, new GenerationRequest
        {
            Prompt = "a photograph of an astronaut riding a horse",
            NegativePrompt = "blurry",
            Steps = 6,
            Sampler = "Euler a",
            CfgScale = 7,
            Seed = 77,
            Width = Size,
            Height = Size,
            Strength = 0.8,
            InitImage = image,
            Mask = mask.Where((_, i) => i % 3 == 0).ToArray(), // one byte per pixel
            MaskBlur = 2,
        });
        return result.Latents.clone();
    }

    [Theory]
    [MemberData(nameof(Families))]
    public void NineChannelModelWithSilentConditioningInpaintsAsTheLatentMaskModel(string family)
    {
        using var dir = new TempDir();
        var (silent, silentConfig) = NineChannelCopy(dir, family, 0);
        using (var check = StableDiffusionCheckpoint.Load(silent, new CheckpointLoadOptions { ConfigPath = silentConfig, TokenizerPath = TestPaths.GoldenFile("clip") }))
            Assert.True(check.IsInpainting);
        using var plain = Inpaint(TestPaths.GoldenFile(family + ".safetensors"), TestPaths.GoldenFile(family + ".config.json"));
        using var nine = Inpaint(silent, silentConfig);
        output.WriteLine($"{family}: 9-channel (silent) vs 4-channel latents max abs diff / rms = {TensorAssert.MaxAbsDiff(plain, nine) / TensorAssert.Rms(plain):E2}");
        TensorAssert.CloseRelativeToRms(plain, nine, 1e-5, $"{family} inpainting latents");

        var (live, liveConfig) = NineChannelCopy(dir, family, 0.5);
        using var conditioned = Inpaint(live, liveConfig);
        double change = TensorAssert.MaxAbsDiff(plain, conditioned) / TensorAssert.Rms(plain);
        output.WriteLine($"{family}: 9-channel (live) vs 4-channel latents max abs diff / rms = {change:E2}");
        Assert.True(change > 1e-2, $"{family}: the mask and masked-image channels changed the result by only {change:E2} of rms");
    }

    [Fact]
    public void SdxlInpaintingCheckpointRunsFromTheCommandLine()
    {
        using var dir = new TempDir();
        var (model, config) = NineChannelCopy(dir, "tiny_sdxl", 0.5);
        var (image, mask) = ImageAndMask();
        var imagePath = dir.File("in.png");
        var maskPath = dir.File("mask.png");
        SharpDiffusion.Png.PngEncoder.Save(imagePath, image, Size, Size);
        SharpDiffusion.Png.PngEncoder.Save(maskPath, mask, Size, Size);
        var outPng = dir.File("out.png");
        var stderr = new StringWriter();
        int code = CliApp.Run(new[] { "generate", "--model", model, "--config", config, "--tokenizer", TestPaths.GoldenFile("clip"),
            "--prompt", "a cat", "--steps", "4", "--seed", "5", "--width", "32", "--height", "32", "--init-image", imagePath,
            "--mask", maskPath, "--strength", "0.9", "--out", outPng }, new StringWriter(), stderr, stderrIsTerminal: false);
        Assert.True(code == 0, stderr.ToString());
        Assert.True(File.Exists(outPng));
        var parameters = SharpDiffusion.Png.PngTextChunks.Get(SharpDiffusion.Png.PngTextChunks.Read(outPng), "parameters");
        Assert.Contains("Denoising strength: 0.9, Mask blur: 4", parameters);
    }
}
