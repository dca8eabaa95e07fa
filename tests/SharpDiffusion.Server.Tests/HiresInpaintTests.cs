using System.Text.Json;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// A1111's hires. fix (txt2img) and inpainting (img2img) fields on the tiny SD1 model: each request gives the PNG,
/// byte for byte, that <c>sharpdiffusion generate</c> writes with the same settings; bad values are 422s naming the field.
/// </summary>
public class HiresInpaintTests
{
    private static byte[] Cli(TestServer server, params string[] extra) => GenerationTests.CliGenerate(server, "cli.png", extra);

    private static async Task<(byte[] Png, JsonElement Info)> Generate(TestServer server, string route, object request)
    {
        var (status, body) = await server.PostAsync(route, request);
        Assert.True(status == 200, body.ToString());
        var png = Convert.FromBase64String(body.GetProperty("images")[0].GetString()!);
        return (png, JsonDocument.Parse(body.GetProperty("info").GetString()!).RootElement);
    }

    private static string Parameters(byte[] png) => PngTextChunks.Get(PngTextChunks.Read(png), "parameters")!;

    /// <summary>The decoded RGBA pixels (two PNGs whose text differs compare equal here when their images do).</summary>
    private static byte[] Pixels(byte[] png)
    {
        using var bitmap = SkiaSharp.SKBitmap.Decode(png);
        return bitmap.Bytes;
    }

    [Fact]
    public async Task HiresFixGivesTheCliImage()
    {
        await using var server = await TestServer.StartAsync();
        var (png, info) = await Generate(server, "/sdapi/v1/txt2img", new
        {
            prompt = "a red fox", steps = 3, sampler_name = "Euler", cfg_scale = 7, seed = 4, width = 16, height = 16,
            enable_hr = true, hr_scale = 2, hr_upscaler = "Latent", hr_second_pass_steps = 2, denoising_strength = 0.6,
            hr_sampler_name = "Use same sampler", hr_prompt = "", hr_negative_prompt = "",
        });
        var cli = Cli(server, "--prompt", "a red fox", "--steps", "3", "--sampler", "Euler", "--cfg", "7", "--seed", "4", "--width", "16",
            "--height", "16", "--hires-scale", "2", "--hires-upscaler", "Latent", "--hires-steps", "2", "--hires-denoise", "0.6");
        Assert.Equal(cli, png);
        Assert.Contains("Denoising strength: 0.6, Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent", Parameters(png));
        Assert.Equal(32, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16))); // 16 x 2
        Assert.Equal(0.6, info.GetProperty("denoising_strength").GetDouble());
        Assert.True(info.GetProperty("enable_hr").GetBoolean());
        var extra = info.GetProperty("extra_generation_params");
        Assert.Equal(2, extra.GetProperty("Hires upscale").GetDouble());
        Assert.Equal(2, extra.GetProperty("Hires steps").GetInt32());
        Assert.Equal("Latent", extra.GetProperty("Hires upscaler").GetString());
    }

    [Fact]
    public async Task HiresSamplerAndSchedulerGiveTheCliImage()
    {
        await using var server = await TestServer.StartAsync();
        var (png, info) = await Generate(server, "/sdapi/v1/txt2img", new
        {
            prompt = "a red fox", steps = 3, sampler_name = "Euler", cfg_scale = 7, seed = 4, width = 16, height = 16,
            enable_hr = true, hr_scale = 2, hr_upscaler = "Latent", hr_second_pass_steps = 2, denoising_strength = 0.6,
            hr_sampler_name = "DPM++ 2M", hr_scheduler = "Karras",
        });
        var cli = Cli(server, "--prompt", "a red fox", "--steps", "3", "--sampler", "Euler", "--cfg", "7", "--seed", "4", "--width", "16",
            "--height", "16", "--hires-scale", "2", "--hires-upscaler", "Latent", "--hires-steps", "2", "--hires-denoise", "0.6",
            "--hires-sampler", "DPM++ 2M", "--hires-schedule", "Karras");
        Assert.Equal(cli, png);
        Assert.Contains("Denoising strength: 0.6, Hires sampler: DPM++ 2M, Hires schedule type: Karras, Hires upscale: 2", Parameters(png));
        Assert.Equal("DPM++ 2M", info.GetProperty("extra_generation_params").GetProperty("Hires sampler").GetString());
    }

    [Fact]
    public async Task HiresPromptsGiveTheCliImage()
    {
        await using var server = await TestServer.StartAsync();
        var (png, info) = await Generate(server, "/sdapi/v1/txt2img", new
        {
            prompt = "a red fox", negative_prompt = "dark", steps = 3, sampler_name = "Euler", seed = 4, width = 16, height = 16,
            enable_hr = true, hr_scale = 2, hr_upscaler = "Latent", denoising_strength = 0.6,
            hr_prompt = "a red fox, detailed fur", hr_negative_prompt = "blurry",
        });
        var cli = Cli(server, "--prompt", "a red fox", "--negative", "dark", "--steps", "3", "--sampler", "Euler", "--seed", "4", "--width", "16",
            "--height", "16", "--hires-scale", "2", "--hires-upscaler", "Latent", "--hires-denoise", "0.6",
            "--hires-prompt", "a red fox, detailed fur", "--hires-negative", "blurry");
        Assert.Equal(cli, png);
        Assert.Contains("Denoising strength: 0.6, Hires prompt: \"a red fox, detailed fur\", Hires negative prompt: blurry, Hires upscale: 2", Parameters(png));
        var extra = info.GetProperty("extra_generation_params");
        Assert.Equal("a red fox, detailed fur", extra.GetProperty("Hires prompt").GetString());
        Assert.Equal("blurry", extra.GetProperty("Hires negative prompt").GetString());

        // hr_prompt equal to the prompt (or empty) is A1111's "same": no field, the plain hires image.
        var (same, sameInfo) = await Generate(server, "/sdapi/v1/txt2img", new
        {
            prompt = "a red fox", negative_prompt = "dark", steps = 3, sampler_name = "Euler", seed = 4, width = 16, height = 16,
            enable_hr = true, hr_scale = 2, hr_upscaler = "Latent", denoising_strength = 0.6, hr_prompt = "a red fox", hr_negative_prompt = "",
        });
        Assert.NotEqual(png, same);
        Assert.DoesNotContain("Hires prompt", Parameters(same));
        Assert.False(sameInfo.GetProperty("extra_generation_params").TryGetProperty("Hires prompt", out _));
    }

    [Fact]
    public async Task UnequalMaskBlursGiveTheCliImageAndNoMaskBlurField()
    {
        await using var server = await TestServer.StartAsync();
        var init = new byte[16 * 16 * 3];
        var mask = new byte[16 * 16 * 3];
        for (int i = 0; i < init.Length; i++) init[i] = (byte)(i * 7 % 251);
        for (int y = 4; y < 12; y++)
            for (int x = 6; x < 10; x++)
                mask[(y * 16 + x) * 3] = mask[(y * 16 + x) * 3 + 1] = mask[(y * 16 + x) * 3 + 2] = 255;
        var initPng = PngEncoder.Encode(init, 16, 16);
        var maskPng = PngEncoder.Encode(mask, 16, 16);
        var (png, info) = await Generate(server, "/sdapi/v1/img2img", new
        {
            prompt = "a red fox", steps = 3, sampler_name = "Euler", seed = 4, width = 16, height = 16, denoising_strength = 0.7,
            init_images = new[] { Convert.ToBase64String(initPng) }, mask = Convert.ToBase64String(maskPng), mask_blur_x = 1, mask_blur_y = 3,
            inpaint_full_res = false,
        });
        File.WriteAllBytes(Path.Combine(server.Root, "init.png"), initPng);
        File.WriteAllBytes(Path.Combine(server.Root, "mask.png"), maskPng);
        var cli = Cli(server, "--prompt", "a red fox", "--steps", "3", "--sampler", "Euler", "--seed", "4", "--width", "16", "--height", "16",
            "--strength", "0.7", "--init-image", Path.Combine(server.Root, "init.png"), "--mask", Path.Combine(server.Root, "mask.png"),
            "--mask-blur", "1", "--mask-blur-y", "3", "--inpaint-fill", "fill"); // A1111 API default inpainting_fill 0
        Assert.Equal(Parameters(cli), Parameters(png));
        Assert.Equal(cli, png);
        // A1111's mask_blur is None when the directions differ: no "Mask blur" field.
        Assert.DoesNotContain("Mask blur", Parameters(png));
        Assert.False(info.GetProperty("extra_generation_params").TryGetProperty("Mask blur", out _));

        var (equal, _) = await Generate(server, "/sdapi/v1/img2img", new
        {
            prompt = "a red fox", steps = 3, sampler_name = "Euler", seed = 4, width = 16, height = 16, denoising_strength = 0.7,
            init_images = new[] { Convert.ToBase64String(initPng) }, mask = Convert.ToBase64String(maskPng), mask_blur_x = 1, mask_blur_y = 1,
            inpaint_full_res = false,
        });
        Assert.NotEqual(equal, png);
        Assert.Contains("Mask blur: 1", Parameters(equal));
    }

    [Fact]
    public async Task HiresFixWithAnUpscalerModelAndResizeToAsA1111()
    {
        await using var server = await TestServer.StartAsync();
        Directory.CreateDirectory(Path.Combine(server.ModelsDir, "ESRGAN"));
        File.Copy(TestPaths.GoldenFile("ext/tiny_rrdb_x2.pth"), Path.Combine(server.ModelsDir, "ESRGAN", "tiny_rrdb_x2.pth"));
        var (_, upscalers) = await server.GetAsync("/sdapi/v1/upscalers");
        Assert.Equal(["None", "Lanczos", "Nearest", "tiny_rrdb_x2"], upscalers.EnumerateArray().Select(u => u.GetProperty("name").GetString()));
        Assert.Equal("ESRGAN", upscalers[3].GetProperty("model_name").GetString());
        var (_, modes) = await server.GetAsync("/sdapi/v1/latent-upscale-modes");
        Assert.Equal(["Latent", "Latent (nearest)"], modes.EnumerateArray().Select(m => m.GetProperty("name").GetString()));

        var (png, _) = await Generate(server, "/sdapi/v1/txt2img", new
        {
            prompt = "a red fox", steps = 2, sampler_name = "Euler", seed = 5, width = 16, height = 16,
            enable_hr = true, hr_scale = 2, hr_upscaler = "tiny_rrdb_x2", denoising_strength = 0.5,
        });
        var cli = Cli(server, "--prompt", "a red fox", "--steps", "2", "--sampler", "Euler", "--cfg", "7", "--seed", "5", "--width", "16",
            "--height", "16", "--hires-scale", "2", "--hires-upscaler", "tiny_rrdb_x2", "--hires-denoise", "0.5", "--models-dir", server.ModelsDir);
        Assert.Equal(cli, png);
        Assert.Contains("Hires upscaler: tiny_rrdb_x2", Parameters(png));

        // hr_resize_x alone follows the aspect ratio (the scale-2 image; A1111 writes "Hires resize: 32x0"); "None" is a plain Lanczos resize.
        (png, _) = await Generate(server, "/sdapi/v1/txt2img", new
        {
            prompt = "a red fox", steps = 2, sampler_name = "Euler", seed = 5, width = 16, height = 16,
            enable_hr = true, hr_resize_x = 32, hr_upscaler = "None", denoising_strength = 0.5,
        });
        cli = Cli(server, "--prompt", "a red fox", "--steps", "2", "--sampler", "Euler", "--cfg", "7", "--seed", "5", "--width", "16",
            "--height", "16", "--hires-resize", "32x0", "--hires-upscaler", "None", "--hires-denoise", "0.5", "--models-dir", server.ModelsDir);
        Assert.Equal(cli, png);
        Assert.Contains("Hires resize: 32x0, Hires upscaler: None", Parameters(png));
        var scaled = Cli(server, "--prompt", "a red fox", "--steps", "2", "--sampler", "Euler", "--cfg", "7", "--seed", "5", "--width", "16",
            "--height", "16", "--hires-scale", "2", "--hires-upscaler", "None", "--hires-denoise", "0.5", "--models-dir", server.ModelsDir);
        Assert.Equal(Pixels(scaled), Pixels(png));

        // Both sides with another aspect ratio: upscaled to cover 32x32, the latents cut to 32x24 (A1111's truncate_y).
        foreach (var upscaler in new[] { "Latent", "None" })
        {
            var (wide, info2) = await Generate(server, "/sdapi/v1/txt2img", new
            {
                prompt = "a red fox", steps = 2, sampler_name = "Euler", seed = 5, width = 16, height = 16,
                enable_hr = true, hr_resize_x = 32, hr_resize_y = 24, hr_upscaler = upscaler, denoising_strength = 0.5,
            });
            Assert.Equal(Cli(server, "--prompt", "a red fox", "--steps", "2", "--sampler", "Euler", "--cfg", "7", "--seed", "5", "--width", "16",
                "--height", "16", "--hires-resize", "32x24", "--hires-upscaler", upscaler, "--hires-denoise", "0.5"), wide);
            Assert.Equal((32, 24), (System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(wide.AsSpan(16)), System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(wide.AsSpan(20))));
            Assert.Contains("Hires resize: 32x24", Parameters(wide));
            Assert.Equal("32x24", info2.GetProperty("extra_generation_params").GetProperty("Hires resize").GetString());
        }

        // "Nearest", as /upscalers lists it, is A1111's nearest-neighbour upscaler.
        (png, _) = await Generate(server, "/sdapi/v1/txt2img", new
        {
            prompt = "a red fox", steps = 2, sampler_name = "Euler", seed = 5, width = 16, height = 16,
            enable_hr = true, hr_scale = 2, hr_upscaler = "Nearest", denoising_strength = 0.5,
        });
        cli = Cli(server, "--prompt", "a red fox", "--steps", "2", "--sampler", "Euler", "--cfg", "7", "--seed", "5", "--width", "16",
            "--height", "16", "--hires-scale", "2", "--hires-upscaler", "Nearest", "--hires-denoise", "0.5", "--models-dir", server.ModelsDir);
        Assert.Equal(cli, png);
        Assert.Contains("Hires upscaler: Nearest", Parameters(png));
    }

    [Fact]
    public async Task ResizeModesGiveTheCliImageAndA1111sCanvas()
    {
        await using var server = await TestServer.StartAsync();
        // A 24x16 init image (left half red, right half blue) for a 16x16 output: each mode shapes it differently.
        var rgb = new byte[24 * 16 * 3];
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 24; x++)
                (rgb[(y * 24 + x) * 3], rgb[(y * 24 + x) * 3 + 2]) = x < 12 ? ((byte)220, (byte)10) : ((byte)10, (byte)220);
        var init = PngEncoder.Encode(rgb, 24, 16);
        var initPath = Path.Combine(server.Root, "wide.png");
        File.WriteAllBytes(initPath, init);

        // The engine's init image is A1111's resize_image canvas (A1111ResizeImage, Pillow-exact; its own tests).
        var request = new Engine.Pipeline.GenerationRequest { Prompt = "", Width = 16, Height = 16, ResizeMode = Engine.Pipeline.InitResizeMode.CropAndResize };
        Assert.Equal(Engine.Upscaling.A1111ResizeImage.CropAndResize(rgb, 24, 16, 3, 16, 16), Engine.Pipeline.InitImageLoader.Attach(request, initPath, null, out _).InitImage);
        request = request with { ResizeMode = Engine.Pipeline.InitResizeMode.ResizeAndFill };
        Assert.Equal(Engine.Upscaling.A1111ResizeImage.ResizeAndFill(rgb, 24, 16, 3, 16, 16), Engine.Pipeline.InitImageLoader.Attach(request, initPath, null, out _).InitImage);

        var pngs = new List<byte[]>();
        foreach (var (mode, name) in new[] { (0, "just-resize"), (1, "crop-and-resize"), (2, "resize-and-fill"), (3, "latent-upscale") })
        {
            var (png, _) = await Generate(server, "/sdapi/v1/img2img", new
            {
                prompt = "a dog", steps = 3, sampler_name = "Euler", seed = 3, width = 16, height = 16, denoising_strength = 0.5,
                init_images = new[] { Convert.ToBase64String(init) }, resize_mode = mode,
            });
            Assert.Equal(Cli(server, "--prompt", "a dog", "--steps", "3", "--sampler", "Euler", "--cfg", "7", "--seed", "3", "--width", "16", "--height", "16",
                "--init-image", initPath, "--strength", "0.5", "--resize-mode", name), png);
            pngs.Add(png);
        }
        Assert.Equal(4, pngs.Select(Convert.ToBase64String).Distinct().Count());

        // Mode 3 keeps the image's own size for the encoder (the generator stretches the latents), and is refused with a mask.
        request = request with { ResizeMode = Engine.Pipeline.InitResizeMode.LatentUpscale };
        var attached = Engine.Pipeline.InitImageLoader.Attach(request, initPath, null, out _);
        Assert.Equal((24, 16), attached.ImageSize);
        Assert.Equal(rgb, attached.InitImage);
        var (status, body) = await server.PostAsync("/sdapi/v1/img2img", new
        {
            width = 16, height = 16, init_images = new[] { Convert.ToBase64String(init) }, resize_mode = 3, mask = Convert.ToBase64String(init),
        });
        Assert.Equal(422, status);
        Assert.Equal("resize_mode", body.GetProperty("detail")[0].GetProperty("loc")[1].GetString());
    }

    [Fact]
    public async Task InpaintingGivesTheCliImage()
    {
        await using var server = await TestServer.StartAsync();
        var init = GenerationTests.CliGenerate(server, "init.png", "--prompt", "a cat", "--steps", "2", "--seed", "1", "--width", "16", "--height", "16");
        // The mask: white (repaint) in the right half, black elsewhere.
        var maskRgb = new byte[16 * 16 * 3];
        for (int y = 0; y < 16; y++)
            for (int x = 8; x < 16; x++)
                maskRgb.AsSpan((y * 16 + x) * 3, 3).Fill(255);
        var mask = PngEncoder.Encode(maskRgb, 16, 16);
        var maskPath = Path.Combine(server.Root, "mask.png");
        File.WriteAllBytes(maskPath, mask);
        var initPath = Path.Combine(server.Root, "init.png");
        string[] common = ["--prompt", "a dog", "--steps", "3", "--sampler", "Euler", "--cfg", "7", "--seed", "3", "--width", "16", "--height", "16",
            "--init-image", initPath, "--strength", "0.8", "--mask", maskPath];

        // Whole picture, blurred mask, original content.
        var (png, info) = await Generate(server, "/sdapi/v1/img2img", new
        {
            prompt = "a dog", steps = 3, sampler_name = "Euler", seed = 3, width = 16, height = 16, denoising_strength = 0.8,
            init_images = new[] { Convert.ToBase64String(init) }, mask = "data:image/png;base64," + Convert.ToBase64String(mask),
            mask_blur = 2, inpainting_fill = 1, inpaint_full_res = false,
        });
        Assert.Equal(Cli(server, [.. common, "--mask-blur", "2", "--inpaint-fill", "original"]), png);
        Assert.Contains("Mask blur: 2", Parameters(png));
        Assert.Equal(2, info.GetProperty("extra_generation_params").GetProperty("Mask blur").GetDouble());

        // Only masked with padding, inverted mask, latent noise.
        (png, info) = await Generate(server, "/sdapi/v1/img2img", new
        {
            prompt = "a dog", steps = 3, sampler_name = "Euler", seed = 3, width = 16, height = 16, denoising_strength = 0.8,
            init_images = new[] { Convert.ToBase64String(init) }, mask = Convert.ToBase64String(mask),
            mask_blur_x = 1, mask_blur_y = 1, inpainting_fill = 2, inpaint_full_res = true, inpaint_full_res_padding = 4, inpainting_mask_invert = 1,
        });
        Assert.Equal(Cli(server, [.. common, "--mask-blur", "1", "--inpaint-fill", "latent-noise", "--inpaint-full-res", "--inpaint-padding", "4", "--mask-invert"]), png);
        var parameters = Parameters(png);
        foreach (var field in new[] { "Mask mode: Inpaint not masked", "Inpaint area: Only masked", "Masked area padding: 4", "Masked content: latent noise" })
            Assert.Contains(field, parameters);
        var extra = info.GetProperty("extra_generation_params");
        Assert.Equal("latent noise", extra.GetProperty("Masked content").GetString());
        Assert.Equal(4, extra.GetProperty("Masked area padding").GetInt32());

        // A1111's API defaults: masked content "fill" (0), only masked on, padding 0, blur 4.
        (png, _) = await Generate(server, "/sdapi/v1/img2img", new
        {
            prompt = "a dog", steps = 3, sampler_name = "Euler", seed = 3, width = 16, height = 16, denoising_strength = 0.8,
            init_images = new[] { Convert.ToBase64String(init) }, mask = Convert.ToBase64String(mask),
        });
        Assert.Equal(Cli(server, [.. common, "--mask-blur", "4", "--inpaint-fill", "fill", "--inpaint-full-res", "--inpaint-padding", "0"]), png);
    }

    [Fact]
    public async Task InvalidHiresAndMaskFieldsAre422sNamingTheField()
    {
        await using var server = await TestServer.StartAsync();
        async Task<string[]> Fields(string route, object request)
        {
            var (status, body) = await server.PostAsync(route, request);
            Assert.True(status == 422, body.ToString());
            return body.GetProperty("detail").EnumerateArray().Select(e => e.GetProperty("loc")[1].GetString()!).Order(StringComparer.Ordinal).ToArray();
        }
        Assert.Equal(["hr_upscaler"], await Fields("/sdapi/v1/txt2img", new { width = 16, height = 16, enable_hr = true, hr_upscaler = "Latent (bicubic)" }));
        Assert.Equal(["hr_upscaler"], await Fields("/sdapi/v1/txt2img", new { width = 16, height = 16, enable_hr = true, hr_upscaler = "NoSuchESRGAN" }));
        Assert.Equal(["hr_scale"], await Fields("/sdapi/v1/txt2img", new { width = 16, height = 16, enable_hr = true, hr_scale = "big" }));
        Assert.Equal(["hr_scale"], await Fields("/sdapi/v1/txt2img", new { width = 16, height = 16, enable_hr = true, hr_scale = 1.3 })); // 20.8 px
        Assert.Equal(["hr_resize_x"], await Fields("/sdapi/v1/txt2img", new { width = 16, height = 16, enable_hr = true, hr_resize_x = 8 }));
        Assert.Equal(["hr_prompt", "hr_sampler_name", "hr_scheduler"], await Fields("/sdapi/v1/txt2img",
            new { prompt = "a", sampler_name = "Euler", width = 16, height = 16, enable_hr = true, hr_sampler_name = "No Such Sampler", hr_scheduler = "Wavy", hr_prompt = "b <lora:style:1>" }));
        Assert.Equal(["denoising_strength", "enable_hr"], await Fields("/sdapi/v1/txt2img", new { enable_hr = "perhaps", denoising_strength = 2 }));

        var init = Convert.ToBase64String(PngEncoder.Encode(new byte[16 * 16 * 3], 16, 16));
        Assert.Equal(["inpainting_fill", "inpainting_mask_invert", "mask"], await Fields("/sdapi/v1/img2img",
            new { width = 16, height = 16, init_images = new[] { init }, mask = "not base64!", inpainting_fill = 4, inpainting_mask_invert = 2 }));
        Assert.Equal(["mask_blur_y"], await Fields("/sdapi/v1/img2img",
            new { width = 16, height = 16, init_images = new[] { init }, mask = init, mask_blur_x = 2, mask_blur_y = -3 }));
        Assert.Equal(["initial_noise_multiplier", "mask_round"], await Fields("/sdapi/v1/img2img",
            new { width = 16, height = 16, init_images = new[] { init }, mask = init, mask_round = false, initial_noise_multiplier = 0.5 }));
    }
}
