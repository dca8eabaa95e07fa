using System.CommandLine;
using System.Globalization;
using SharpDiffusion.Engine.Datasets.Emoji;
using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Cli.Commands;

/// <summary>
/// <c>dev emoji-dataset --out DIR [--size 64] [--repeats 1] [--font PATH] [--list PATH]</c>: renders every emoji of the
/// repository's caption list with Noto Color Emoji into a kohya training folder. <c>dev emoji-list --out PATH
/// [--emoji-test FILE] [--cldr DIR]</c>: rebuilds that list from Unicode's emoji-test.txt and CLDR annotations.
/// </summary>
internal static class EmojiDatasetCommands
{
    public static Command CreateDataset(CliContext context)
    {
        var output = new Option<string?>("--out", "-o") { Description = "Dataset folder (the images go to OUT/{repeats}_emoji/)" };
        var size = new Option<int>("--size") { Description = "Square image size in pixels", DefaultValueFactory = _ => 64 };
        var repeats = new Option<int>("--repeats") { Description = "kohya repeats (the folder-name prefix)", DefaultValueFactory = _ => 1 };
        var font = new Option<string?>("--font") { Description = "Noto Color Emoji .ttf (else the installed one: Debian fonts-noto-color-emoji)" };
        var list = new Option<string?>("--list") { Description = $"Caption list (default: the repository's {EmojiCatalog.RepositoryListPath})" };
        var include = new Option<string?>("--include") { Description = "Only emoji whose name matches this regex (e.g. a held-out group: \\bcat\\b)" };
        var exclude = new Option<string?>("--exclude") { Description = "Leave out emoji whose name matches this regex (e.g. hold out \\bcat\\b)" };
        var style = new Option<string>("--style") { Description = "color, or grayscale (Pillow's L luma; a style for a hypernetwork to learn)", DefaultValueFactory = _ => "color" };
        var command = new Command("emoji-dataset", "Render every emoji (Noto Color Emoji, shaped) into a kohya training folder with captions");
        foreach (var option in new Option[] { output, size, repeats, font, list, include, exclude, style }) command.Options.Add(option);
        command.SetAction(result => WriteDataset(context, result.GetValue(output), result.GetValue(size), result.GetValue(repeats), result.GetValue(font), result.GetValue(list),
            result.GetValue(include), result.GetValue(exclude), result.GetValue(style)!));
        return command;
    }

    public static Command CreateList(CliContext context)
    {
        var output = new Option<string?>("--out", "-o") { Description = "The caption list to write (.tsv)" };
        var emojiTest = new Option<string>("--emoji-test") { Description = "Unicode's emoji-test.txt (Debian unicode-data)", DefaultValueFactory = _ => EmojiCatalog.SystemEmojiTestPath };
        var cldr = new Option<string?>("--cldr") { Description = "CLDR common/ folder for keywords (Debian unicode-cldr-core: /usr/share/unicode/cldr/common)" };
        var command = new Command("emoji-list", "Rebuild the emoji caption list from emoji-test.txt (fully-qualified, no skin tones) and CLDR keywords");
        foreach (var option in new Option[] { output, emojiTest, cldr }) command.Options.Add(option);
        command.SetAction(result => WriteList(context, result.GetValue(output), result.GetValue(emojiTest)!, result.GetValue(cldr)));
        return command;
    }

    public static Command CreateEvaluation(CliContext context)
    {
        var model = new Option<string?>("--model", "-m") { Description = "The checkpoint (default: the shipped model)" };
        var data = new Option<string[]>("--data") { Description = "Gallery: emoji-dataset folders holding every emoji once (repeat for several)", Required = true, AllowMultipleArgumentsPerToken = true };
        var promptsFrom = new Option<string?>("--prompts-from") { Description = "Folder whose emoji names make the prompts (default: the first --data)" };
        var template = new Option<string>("--prompt-template") { Description = "Prompt with {name} replaced by the emoji's name, e.g. \"{name} <lora:cats:1>\"", DefaultValueFactory = _ => "{name}" };
        var modelsDir = new Option<string?>("--models-dir") { Description = "A1111 models folder for the prompt's LoRA, embeddings, hypernetworks (default: the shipped models/)" };
        var count = new Option<int>("--count") { Description = "Prompts (seeded choice)", DefaultValueFactory = _ => 200 };
        var steps = new Option<int>("--steps") { Description = "Sampling steps", DefaultValueFactory = _ => 25 };
        var cfg = new Option<double>("--cfg") { Description = "CFG scale", DefaultValueFactory = _ => 7 };
        var sampler = new Option<string>("--sampler") { Description = "Sampler", DefaultValueFactory = _ => "Euler a" };
        var seed = new Option<long>("--seed") { Description = "Seed of the prompt choice and of the first image (then +1 each)", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var command = new Command("eval-emoji", "Retrieval accuracy of an emoji model: nearest gallery image (L2, 32x32 RGB) of images generated from emoji names");
        foreach (var option in new Option[] { model, data, promptsFrom, template, modelsDir, count, steps, cfg, sampler, seed, json }) command.Options.Add(option);
        command.SetAction(r =>
        {
            var modelPath = r.GetValue(model) ?? ShippedModel.CheckpointPath();
            if (modelPath == null || !File.Exists(modelPath))
            {
                context.Fail(modelPath == null ? "no --model and no shipped model found" : $"{modelPath}: no such file");
                return ExitCodes.Usage;
            }
            var options = new EmojiRetrievalOptions
            {
                Model = new ModelChoice(modelPath),
                ModelsDir = r.GetValue(modelsDir) ?? ShippedModel.ModelsFolder(),
                GalleryFolders = r.GetValue(data)!,
                PromptFolder = r.GetValue(promptsFrom),
                PromptTemplate = r.GetValue(template)!,
                Count = r.GetValue(count),
                Steps = r.GetValue(steps),
                CfgScale = r.GetValue(cfg),
                Sampler = r.GetValue(sampler)!,
                Seed = r.GetValue(seed),
            };
            EmojiRetrievalResult result;
            try
            {
                using var service = new GenerationService();
                bool quiet = r.GetValue(json);
                result = EmojiRetrieval.Measure(service, options, quiet ? null : line => context.Error.WriteLine(line));
            }
            catch (Exception e) when (e is InvalidDataException or DirectoryNotFoundException or InvalidModelFileException or ArgumentException or FileNotFoundException)
            {
                context.Fail(e.Message);
                return ExitCodes.Usage;
            }
            if (r.GetValue(json))
            {
                context.Output.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
                {
                    model = modelPath, prompts = result.Samples.Count, gallery = result.GallerySize, top1 = result.Top1, top5 = result.Top5,
                    chance_top1 = 1.0 / result.GallerySize, seconds_per_image = result.SecondsPerImage, steps = options.Steps, cfg = options.CfgScale,
                    sampler = options.Sampler, template = options.PromptTemplate, mean_saturation = result.MeanSaturation,
                }));
            }
            else
            {
                context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{modelPath}: {result.Samples.Count} prompts, gallery {result.GallerySize}: top-1 {result.Top1:P1}, top-5 {result.Top5:P1} (chance {1.0 / result.GallerySize:P2}); mean saturation {result.MeanSaturation:F3}; {result.SecondsPerImage:F2} s/image ({options.Steps} steps, {options.Sampler}, CFG {options.CfgScale})"));
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static int WriteDataset(CliContext context, string? output, int size, int repeats, string? fontPath, string? listPath,
        string? include = null, string? exclude = null, string styleName = "color")
    {
        List<EmojiEntry> entries;
        EmojiStyle style;
        EmojiRenderer renderer;
        try
        {
            if (string.IsNullOrEmpty(output)) throw new ArgumentException("--out is required (the dataset folder)");
            if (size is < 8 or > 1024) throw new ArgumentException($"--size {size}: expected 8 to 1024 pixels");
            if (repeats < 1) throw new ArgumentException($"--repeats {repeats}: expected at least 1");
            style = styleName.ToLowerInvariant() switch
            {
                "color" or "colour" => EmojiStyle.Color,
                "grayscale" or "greyscale" => EmojiStyle.Grayscale,
                _ => throw new ArgumentException($"--style {styleName}: expected color or grayscale"),
            };
            listPath ??= FindRepositoryList() ?? throw new FileNotFoundException(
                $"{EmojiCatalog.RepositoryListPath} not found above the current folder or the program: pass --list PATH");
            entries = EmojiCatalog.ReadList(listPath);
            entries = EmojiCatalog.Select(entries, include, exclude);
            if (entries.Count == 0) throw new ArgumentException($"--include/--exclude leave no emoji of {listPath}");
            renderer = EmojiRenderer.Open(fontPath);
        }
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or InvalidModelFileException or InvalidDataException)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }
        EmojiDatasetReport report;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using (renderer)
        {
            try
            {
                report = EmojiDataset.Write(output, entries, renderer, size, repeats, style: style);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                context.Fail($"{output}: {e.Message}");
                return ExitCodes.Usage;
            }
        }
        foreach (var (entry, problem) in report.Failed) context.Fail($"{entry.CodePointText} ({entry.Name}): {problem}; not written");
        context.Output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{report.Folder}: {report.Written} of {entries.Count} emoji, {size}x{size} {(style == EmojiStyle.Grayscale ? "grayscale " : "")}PNG + captions, {clock.Elapsed.TotalSeconds:F1} s (font {renderer.FontPath}, list {listPath})"));
        return report.Failed.Count == 0 ? ExitCodes.Success : ExitCodes.SomeInputsInvalid;
    }

    private static int WriteList(CliContext context, string? output, string emojiTest, string? cldr)
    {
        try
        {
            if (string.IsNullOrEmpty(output)) throw new ArgumentException("--out is required (the .tsv to write)");
            var entries = EmojiCatalog.ReadEmojiTest(emojiTest);
            var provenance = new List<string>
            {
                "Emoji caption list of SharpDiffusion's emoji dataset (`sharpdiffusion dev emoji-dataset`), written by `sharpdiffusion dev emoji-list`.",
                $"Every fully-qualified emoji of Unicode's emoji-test.txt ({HeaderValue(emojiTest, "Version")}), skin-tone variants dropped, in CLDR order.",
            };
            if (cldr != null)
            {
                var files = new[] { Path.Combine(cldr, "annotations", "en.xml"), Path.Combine(cldr, "annotationsDerived", "en.xml") };
                var missing = files.FirstOrDefault(f => !File.Exists(f));
                if (missing != null) throw new FileNotFoundException($"{missing}: no such file (--cldr expects CLDR's common/ folder)", missing);
                entries = EmojiCatalog.WithKeywords(entries, EmojiCatalog.ReadCldrKeywords(files));
                provenance.Add("Keywords: Unicode CLDR annotations (common/annotations/en.xml and common/annotationsDerived/en.xml).");
            }
            provenance.Add("A modified (filtered, reformatted) extract of Unicode data files: © Unicode, Inc., Unicode License (LICENSE-Unicode.txt beside this file).");
            EmojiCatalog.WriteList(output, entries, provenance);
            context.Output.WriteLine($"{output}: {entries.Count} emoji, {entries.Count(e => e.Keywords.Count > 0)} with CLDR keywords");
            return ExitCodes.Success;
        }
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or InvalidModelFileException)
        {
            context.Fail(e.Message);
            return ExitCodes.Usage;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            context.Fail($"{output}: {e.Message}");
            return ExitCodes.Usage;
        }
    }

    /// <summary>"15.0" from emoji-test.txt's "# Version: 15.0" header line.</summary>
    private static string HeaderValue(string path, string key)
    {
        var line = File.ReadLines(path).Take(20).FirstOrDefault(l => l.StartsWith($"# {key}:", StringComparison.Ordinal));
        return line == null ? "version not stated" : $"{key} {line[(key.Length + 3)..].Trim()}";
    }

    /// <summary>The repository's caption list, searched above the current folder and above the program.</summary>
    private static string? FindRepositoryList()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, EmojiCatalog.RepositoryListPath);
                if (File.Exists(candidate)) return candidate;
            }
        }
        return null;
    }
}
