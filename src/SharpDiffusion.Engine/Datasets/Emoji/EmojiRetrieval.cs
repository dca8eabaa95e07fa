using System.Diagnostics;
using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Training;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace SharpDiffusion.Engine.Datasets.Emoji;

/// <summary>Settings of <see cref="EmojiRetrieval.Measure"/>.</summary>
public sealed record EmojiRetrievalOptions
{
    public required ModelChoice Model { get; init; }

    /// <summary>A1111 models folder for the prompt's extra networks (&lt;lora:...&gt;, embeddings, hypernetworks).</summary>
    public string? ModelsDir { get; init; }

    /// <summary>The images generated ones are compared with (emoji-dataset folders; every emoji once).</summary>
    public required IReadOnlyList<string> GalleryFolders { get; init; }

    /// <summary>Where the prompts come from (default: the first gallery folder).</summary>
    public string? PromptFolder { get; init; }

    /// <summary>The prompt made from an emoji's name: "{name}" is replaced (e.g. "{name} &lt;lora:cats:1&gt;").</summary>
    public string PromptTemplate { get; init; } = "{name}";

    public int Count { get; init; } = 200;
    public int Steps { get; init; } = 25;
    public double CfgScale { get; init; } = 7;
    public string Sampler { get; init; } = "Euler a";
    public long Seed { get; init; } = 1;

    /// <summary>Generation size (default: the gallery's image size).</summary>
    public int? Size { get; init; }
}

/// <summary>One generated image's verdict.</summary>
/// <param name="Saturation">The generated image's mean HSV saturation, (max - min) / max per pixel (0 for gray; a style measure).</param>
public sealed record EmojiRetrievalSample(string Prompt, string Expected, IReadOnlyList<string> Nearest, long Seed, double Saturation = 0)
{
    public bool Top1 => Nearest.Count > 0 && Nearest[0] == Expected;
    public bool Top5 => Nearest.Take(5).Contains(Expected);
}

public sealed record EmojiRetrievalResult(int GallerySize, IReadOnlyList<EmojiRetrievalSample> Samples, double SecondsPerImage)
{
    public double Top1 => Samples.Count == 0 ? 0 : Samples.Count(s => s.Top1) / (double)Samples.Count;
    public double Top5 => Samples.Count == 0 ? 0 : Samples.Count(s => s.Top5) / (double)Samples.Count;
    public double MeanSaturation => Samples.Count == 0 ? 0 : Samples.Average(s => s.Saturation);
}

/// <summary>
/// How well a text-to-image model draws the emoji it is asked for: for seeded prompts made from emoji names, the
/// generated image's nearest gallery images (L2 on 32x32 RGB, area-averaged); top-1 / top-5 retrieval accuracy
/// (chance: 1 / gallery size) and the time per image. Generation goes through <see cref="GenerationService"/>.
/// </summary>
public static class EmojiRetrieval
{
    public const int CompareSide = 32;

    public static EmojiRetrievalResult Measure(GenerationService service, EmojiRetrievalOptions options, Action<string>? log = null)
    {
        var gallery = options.GalleryFolders.SelectMany(Images).ToList();
        if (gallery.Count == 0) throw new InvalidDataException($"{string.Join(", ", options.GalleryFolders)}: no emoji images (.png with a .txt caption)");
        var duplicate = gallery.GroupBy(g => g.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null) throw new InvalidDataException($"{duplicate.First().Path}: the gallery holds \"{duplicate.Key}\" twice");
        int size = options.Size ?? gallery[0].Side;
        using var galleryPixels = cat(gallery.Select(g => Small(TrainingImageLoader.Load(g.Path, g.Side, g.Side))).ToArray(), 0).flatten(1);

        var prompts = Images(options.PromptFolder ?? options.GalleryFolders[0]).ToList();
        new StepRandom(options.Seed, "eval-prompts", 0).Shuffle(prompts);
        prompts = prompts.Take(options.Count).ToList();
        var samples = new List<EmojiRetrievalSample>();
        var clock = new Stopwatch();
        for (int i = 0; i < prompts.Count; i++)
        {
            var prompt = options.PromptTemplate.Replace("{name}", prompts[i].Name, StringComparison.Ordinal);
            long seed = options.Seed + i;
            var job = new GenerationJob
            {
                Model = options.Model,
                ModelsDir = options.ModelsDir,
                Parameters = new GenerationRequest
                {
                    Prompt = prompt, Seed = seed, Steps = options.Steps, CfgScale = options.CfgScale, Sampler = options.Sampler,
                    Width = size, Height = size,
                },
            };
            if (i == 1) clock.Restart(); // the first image pays for loading the model
            using var result = service.Generate(job);
            var image = result.Images[0];
            using var pixels = Small(FromRgb(image.Rgb, image.Width, image.Height)).flatten(1);
            using var distances = (galleryPixels - pixels).square().sum(1);
            var order = distances.argsort().data<long>().Take(5).Select(j => gallery[(int)j].Name).ToList();
            samples.Add(new EmojiRetrievalSample(prompt, prompts[i].Name, order, seed, MeanSaturation(image.Rgb)));
            log?.Invoke($"{i + 1}/{prompts.Count} \"{prompt}\" -> {order[0]}{(order[0] == prompts[i].Name ? " (hit)" : "")}");
        }
        double perImage = prompts.Count > 1 ? clock.Elapsed.TotalSeconds / (prompts.Count - 1) : double.NaN;
        return new EmojiRetrievalResult(gallery.Count, samples, perImage);
    }

    private sealed record GalleryImage(string Path, string Name, int Side);

    /// <summary>The emoji of a data set folder (recursively): each PNG with the name on the first line of its caption.</summary>
    private static IEnumerable<GalleryImage> Images(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: no such folder");
        foreach (var path in Directory.GetFiles(folder, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var caption = Path.ChangeExtension(path, ".txt");
            if (!File.Exists(caption)) continue;
            var name = File.ReadLines(caption).FirstOrDefault()?.Trim();
            if (string.IsNullOrEmpty(name)) continue;
            using var codec = SkiaSharp.SKCodec.Create(path) ?? throw new InvalidDataException($"{path}: unreadable image");
            yield return new GalleryImage(path, name, codec.Info.Width);
        }
    }

    /// <summary>Mean HSV saturation of packed RGB: (max - min) / max per pixel, 0 for black (as Pillow's HSV conversion).</summary>
    public static double MeanSaturation(ReadOnlySpan<byte> rgb)
    {
        double sum = 0;
        int pixels = rgb.Length / 3;
        for (int i = 0; i < pixels * 3; i += 3)
        {
            int max = Math.Max(rgb[i], Math.Max(rgb[i + 1], rgb[i + 2]));
            int min = Math.Min(rgb[i], Math.Min(rgb[i + 1], rgb[i + 2]));
            if (max > 0) sum += (max - min) / (double)max;
        }
        return pixels == 0 ? 0 : sum / pixels;
    }

    private static Tensor FromRgb(byte[] rgb, int width, int height)
    {
        using var bytes = tensor(rgb, [height, width, 3]);
        return bytes.permute(2, 0, 1).unsqueeze(0).to(ScalarType.Float32).div(127.5).sub(1.0);
    }

    private static Tensor Small(Tensor image)
    {
        using (image) return F.adaptive_avg_pool2d(image, [CompareSide, CompareSide]);
    }
}
