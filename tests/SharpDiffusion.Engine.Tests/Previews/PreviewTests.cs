using SharpDiffusion.Architectures;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Previews;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Tests.Sampling;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Previews;

/// <summary>TAESD against tests/data/golden/taesd (its README) and live previews during a real sampling run.</summary>
public class PreviewTests
{
    private static string TaesdFile(string name) => TestPaths.GoldenFile("taesd/" + name);

    [Fact]
    public void TaesdDecoderFromThePickleMatchesTheGolden()
    {
        using var decoder = Taesd.Load(TaesdFile("taesd_decoder.pth"));
        Assert.True(decoder.IsDecoder);
        Assert.Equal(4, decoder.LatentChannels);
        using var g = GoldenTensors.Open("taesd/taesd_golden.safetensors");
        using var scope = NewDisposeScope();
        var image = decoder.Forward(g.Get("decode.latents"));
        TensorAssert.MaxAbs(g.Get("decode.image"), image, 1e-4, "TAESD decode");
        var a1111 = image * 2 - 1;
        TensorAssert.MaxAbs(g.Get("decode.image_a1111"), a1111, 2e-4, "TAESD decode x*2-1");
        var u8 = ImageConversion.ToUInt8Values(a1111);
        TensorAssert.MaxAbs(g.Get("decode.image_u8"), u8, 1.0, "TAESD 8-bit");
    }

    [Fact]
    public void TaesdEncoderFromSafetensorsMatchesTheGolden()
    {
        using var encoder = Taesd.Load(TaesdFile("taesd_encoder.safetensors"));
        Assert.False(encoder.IsDecoder);
        using var g = GoldenTensors.Open("taesd/taesd_golden.safetensors");
        using var scope = NewDisposeScope();
        TensorAssert.MaxAbs(g.Get("encode.latents"), encoder.Forward(g.Get("encode.image")), 1e-4, "TAESD encode");
    }

    [Fact]
    public void NonTaesdFileIsOneClearError()
    {
        var e = Assert.Throws<SharpDiffusion.Formats.InvalidModelFileException>(() => Taesd.Load(TestPaths.GoldenFile("samplers/schedules.safetensors")));
        Assert.Contains("not a TAESD decoder or encoder", e.Message);
    }

    [Fact]
    public void CheapPreviewIsA1111sLinearMap()
    {
        using var scope = NewDisposeScope();
        // A latent that is 1 in channel 3 only maps to that channel's row of A1111's table.
        var latents = zeros(1, 4, 2, 2);
        latents[0, 3] = ones(2, 2);
        var sd1 = LatentPreview.Cheap(latents, ModelArchitectures.Sd1);
        Assert.Equal(new long[] { 1, 3, 2, 2 }, sd1.shape);
        Assert.Equal(new[] { -0.184f, -0.271f, -0.473f }, Enumerable.Range(0, 3).Select(c => sd1[0, c, 1, 1].item<float>()).ToArray());
        var xl = LatentPreview.Cheap(latents, ModelArchitectures.Sdxl);
        Assert.Equal(-0.3730f, xl[0, 0, 0, 0].item<float>());
    }

    [Theory]
    [InlineData(PreviewMethod.Cheap, 8)]
    [InlineData(PreviewMethod.Taesd, 64)]
    public void PreviewsAreWrittenAtTheRequestedSteps(PreviewMethod method, int size)
    {
        using var g = GoldenTensors.Open("tiny_sd1_golden.safetensors");
        using var model = new RealUNetGoldenRunTests.LoadedUNet(GoldenModel.Sd1);
        using var decoder = Taesd.Load(TaesdFile("taesd_decoder.pth"));
        var denoiser = new EpsDenoiser(model, DiscreteSchedule.ScaledLinear());
        var previews = new List<PreviewImage>();
        var expected = new List<byte[]>();
        var callback = LatentPreview.EveryNSteps(2, method, ModelArchitectures.Sd1, decoder, previews.Add, step =>
        {
            if ((step.Index + 1) % 2 != 0) return;
            using var scope = NewDisposeScope();
            var image = method == PreviewMethod.Cheap ? LatentPreview.Cheap(step.Denoised, ModelArchitectures.Sd1) : decoder.Forward(step.Denoised) * 2 - 1;
            expected.Add(ImageConversion.ToUInt8(image).permute(0, 2, 3, 1).contiguous()[0].data<byte>().ToArray());
        });
        var request = new SamplingRequest { Sampler = "Euler", Steps = 5, Seed = 42, CfgScale = 7, LatentShape = new long[] { 4, 8, 8 } };
        using var latents = SamplingRun.Run(denoiser, new Conditioning(g.Get("sample.cond")), new Conditioning(g.Get("sample.uncond")), request, callback);
        Assert.Equal(new[] { 1, 3 }, previews.Select(p => p.Step).ToArray());
        Assert.All(previews, p => Assert.Equal((size, size, size * size * 3), (p.Width, p.Height, p.Rgb.Length)));
        Assert.Equal(expected, previews.Select(p => p.Rgb).ToList());
        Assert.True(previews[1].Rgb.Distinct().Count() > 8, "a preview of a real step is not a flat image");
    }
}
