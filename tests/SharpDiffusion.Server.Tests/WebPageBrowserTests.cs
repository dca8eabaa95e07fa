using PuppeteerSharp;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server.Tests;

/// <summary>
/// The web page in a real browser: Debian's Chromium (/usr/bin/chromium, headless, no browser download) driven by
/// PuppeteerSharp against a server on the tiny SD1 model. It fills the form, generates (the job held mid-way so the
/// progress bar and live preview can be seen), checks the image and its parameters, the gallery's buttons, the
/// LoRA picker and the phone layout. With SHARPDIFFUSION_SCREENSHOTS=DIR it saves desktop and phone screenshots there
/// (docs/images holds the README's).
/// </summary>
public class WebPageBrowserTests
{
    private const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task ThePageGeneratesShowsProgressAndFillsImg2Img()
    {
        if (!File.Exists(Chromium))
            Assert.Fail($"{Chromium} is missing: the browser test needs Debian's chromium (apt-get install chromium; .ci/run installs it)");
        GatedBackend? gated = null;
        await using var server = await TestServer.StartAsync(backendFactory: o => gated = new GatedBackend(o) { GateStep = 2, GatedPrompt = "lighthouse" });
        using var backend = gated!;
        var profile = Path.Combine(server.Root, "chromium-profile");
        await using var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            UserDataDir = profile,
            // Root in a container has no user namespace sandbox; /dev/shm may be small.
            Args = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        });
        await using var page = await browser.NewPageAsync();
        await page.SetViewportAsync(new ViewPortOptions { Width = 1200, Height = 860 });
        await page.GoToAsync(server.Client.BaseAddress!.ToString(), WaitUntilNavigation.Networkidle0);
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#networks button').length > 0 && document.getElementById('sampler_name').options.length > 0");
        Assert.Equal("width=device-width, initial-scale=1",
            await page.EvaluateExpressionAsync<string>("document.querySelector('meta[name=viewport]').content"));

        // Fill the form as a person would and generate.
        await page.EvaluateFunctionAsync(@"(fields) => {
            for (const [id, value] of Object.entries(fields)) {
                const element = document.getElementById(id);
                element.value = value;
                element.dispatchEvent(new Event('input', { bubbles: true }));
            }
        }", new Dictionary<string, string>
        {
            ["prompt"] = "a lighthouse at dusk", ["negative_prompt"] = "fog", ["sampler_name"] = "Euler", ["steps"] = "6", ["cfg_scale"] = "7",
            ["seed"] = "4242", ["width"] = "32", ["height"] = "16",
        });
        await page.ClickAsync("#generate");

        // Held at step 2 of 6: the progress bar is shown with a value, and the live preview has arrived.
        await backend.WaitAtGateAsync();
        await page.WaitForFunctionAsync("() => !document.getElementById('progress-area').hidden && document.getElementById('progress').value > 0"
            + " && document.getElementById('preview').naturalWidth > 0");
        Assert.Contains("step 2/6", await page.EvaluateExpressionAsync<string>("document.getElementById('status').textContent"));
        backend.Release();

        await page.WaitForSelectorAsync("#gallery figure img");
        var src = await page.EvaluateExpressionAsync<string>("document.querySelector('#gallery figure img').src");
        Assert.StartsWith("data:image/png;base64,", src);
        var png = Convert.FromBase64String(src["data:image/png;base64,".Length..]);
        var file = Path.Combine(server.Root, "page.png");
        File.WriteAllBytes(file, png);
        var image = Engine.Upscaling.ImageFileReader.LoadRgb(file);
        Assert.Equal((32, 16), (image.Width, image.Height));
        Assert.Equal(new[] { 32, 16 }, await page.EvaluateExpressionAsync<int[]>(
            "(() => { const i = document.querySelector('#gallery figure img'); return [i.naturalWidth, i.naturalHeight]; })()"));
        var caption = await page.EvaluateExpressionAsync<string>("document.querySelector('#gallery figcaption').textContent");
        Assert.StartsWith("a lighthouse at dusk\nNegative prompt: fog\n", caption);
        Assert.Contains("Seed: 4242", caption);
        Assert.Equal(PngTextChunks.Get(PngTextChunks.Read(png), "parameters"), caption);

        // "copy parameters" hands the infotext to the clipboard.
        await page.EvaluateExpressionAsync("window.__copied = null; Object.defineProperty(navigator, 'clipboard', { configurable: true, value: { writeText: t => { window.__copied = t; return Promise.resolve(); } } }); true");
        await page.ClickAsync("#gallery figure .copy-parameters");
        Assert.Equal(caption, await page.EvaluateExpressionAsync<string>("window.__copied"));

        // Re-use the last seed.
        await page.EvaluateExpressionAsync("document.getElementById('seed').value = -1; true");
        await page.ClickAsync("#reuse-seed");
        Assert.Equal("4242", await page.EvaluateExpressionAsync<string>("document.getElementById('seed').value"));

        await SaveScreenshot(page, "serve-desktop.png");

        // "send to img2img": the img2img tab opens with the image as its init image and the image's settings.
        await page.ClickAsync("#gallery figure .send-img2img");
        Assert.False(await page.EvaluateExpressionAsync<bool>("document.getElementById('img2img-panel').hidden"));
        Assert.Equal("true", await page.EvaluateExpressionAsync<string>("document.getElementById('tab-img2img').getAttribute('aria-selected')"));
        Assert.Equal(src, await page.EvaluateExpressionAsync<string>("document.getElementById('init-preview').src"));
        Assert.Equal("a lighthouse at dusk", await page.EvaluateExpressionAsync<string>("document.getElementById('prompt').value"));
        Assert.Equal("32", await page.EvaluateExpressionAsync<string>("document.getElementById('width').value"));

        // The LoRA picker appends A1111's tag.
        await page.EvaluateExpressionAsync("document.getElementById('prompt').value = 'a fox'; true");
        var loraButton = await page.WaitForSelectorAsync("xpath/.//div[@id='networks']/button[text()='+ tiny_sd1_lora']");
        await loraButton.ClickAsync();
        Assert.Equal("a fox <lora:tiny_sd1_lora:1>", await page.EvaluateExpressionAsync<string>("document.getElementById('prompt').value"));
        await page.EvaluateExpressionAsync("document.getElementById('prompt').value = 'a lighthouse at dusk'; true");

        // A phone's width: one column (mobile emulation would reload the page and lose the gallery).
        await page.SetViewportAsync(new ViewPortOptions { Width = 390, Height = 844 });
        Assert.Equal(1, await page.EvaluateExpressionAsync<int>("getComputedStyle(document.querySelector('.layout')).gridTemplateColumns.split(' ').length"));
        Assert.True(await page.EvaluateExpressionAsync<bool>("document.documentElement.scrollWidth <= 390"), "the page is wider than the phone");
        await SaveScreenshot(page, "serve-phone.png");
    }

    private static async Task SaveScreenshot(IPage page, string name)
    {
        var folder = Environment.GetEnvironmentVariable("SHARPDIFFUSION_SCREENSHOTS");
        var bytes = await page.ScreenshotDataAsync(new ScreenshotOptions { FullPage = true, Type = ScreenshotType.Png });
        Assert.Equal([137, 80, 78, 71], bytes[..4]);
        if (folder == null) return;
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, name);
        File.WriteAllBytes(path + ".tmp", bytes);
        File.Move(path + ".tmp", path, overwrite: true);
    }
}
