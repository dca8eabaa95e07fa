using System.Globalization;
using SkiaSharp;

namespace SharpDiffusion.Engine.Training;

/// <summary>One training image with its caption, repeat count and bucket.</summary>
/// <param name="Caption">The whole caption file, lines joined by spaces (A1111's [filewords]).</param>
/// <param name="FirstLine">The caption file's first line (kohya's caption: sd-scripts reads only <c>lines[0]</c>); null: <paramref name="Caption"/>.</param>
public sealed record TrainingImage(string Path, string Caption, int Repeats, int Width, int Height, (int Width, int Height) Bucket, string? FirstLine = null)
{
    /// <summary>What kohya trains a LoRA with: the first line of the caption file.</summary>
    public string KohyaCaption => FirstLine ?? Caption;
}

/// <summary>
/// A kohya DreamBooth-style data folder: subfolders <c>N_concept</c> (N repeats per epoch; the rest of the name is the
/// caption of images that have none), each image captioned by <c>NAME.txt</c> (A1111) or else <c>NAME.caption</c>
/// (kohya's default extension). Images directly in the data folder count once with the folder's name as fallback.
/// Problems (unreadable image, empty caption, image smaller than its bucket) are reported per file; unreadable images
/// are skipped, the others are kept (small images are upscaled, as kohya does).
/// </summary>
public sealed class TrainingDataset
{
    private static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".webp", ".bmp"];

    private TrainingDataset(string root, IReadOnlyList<TrainingImage> images, IReadOnlyList<string> problems)
    {
        Root = root;
        Images = images;
        Problems = problems;
    }

    public string Root { get; }
    public IReadOnlyList<TrainingImage> Images { get; }

    /// <summary>One line per problem file: "path: what is wrong".</summary>
    public IReadOnlyList<string> Problems { get; }

    /// <summary>Images counted with their repeats (kohya's <c>num_train_images</c>).</summary>
    public int RepeatedCount => Images.Sum(i => i.Repeats);

    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    public static TrainingDataset Scan(string root, AspectRatioBuckets buckets)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: no such data folder");
        var images = new List<TrainingImage>();
        var problems = new List<string>();
        var folders = new List<(string Dir, int Repeats, string Fallback)>();
        foreach (var dir in Directory.GetDirectories(root).Order(StringComparer.Ordinal))
        {
            string name = System.IO.Path.GetFileName(dir);
            int underscore = name.IndexOf('_');
            if (underscore > 0 && int.TryParse(name[..underscore], NumberStyles.None, CultureInfo.InvariantCulture, out int repeats) && repeats > 0)
                folders.Add((dir, repeats, name[(underscore + 1)..].Replace('_', ' ')));
            else if (!name.StartsWith('.'))
                problems.Add($"{dir}: folder name is not N_concept (N repeats); skipped");
        }
        folders.Add((root, 1, System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(root))).Replace('_', ' ')));
        foreach (var (dir, repeats, fallback) in folders)
        {
            foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
            {
                if (!ImageExtensions.Contains(System.IO.Path.GetExtension(file).ToLowerInvariant())) continue;
                int w, h;
                using (var codec = SKCodec.Create(file))
                {
                    if (codec == null)
                    {
                        problems.Add($"{file}: unreadable image; skipped");
                        continue;
                    }
                    (w, h) = (codec.Info.Width, codec.Info.Height);
                }
                string caption = ReadCaption(file) ?? fallback;
                if (string.IsNullOrWhiteSpace(caption)) problems.Add($"{file}: empty caption (trained unconditionally)");
                var bucket = buckets.Select(w, h);
                if (w < bucket.Width || h < bucket.Height) problems.Add($"{file}: {w}x{h} is smaller than its bucket {bucket.Width}x{bucket.Height} (upscaled)");
                string? firstLine = caption.Contains('\n') ? caption.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) : null;
                images.Add(new TrainingImage(file, caption.Replace('\n', ' ').Trim(), repeats, w, h, bucket, firstLine));
            }
        }
        return new TrainingDataset(root, images, problems);
    }

    /// <summary>Every non-empty line of the caption file beside the image (the name first), else the data set's caption.</summary>
    public static IReadOnlyList<string> CaptionLines(TrainingImage image)
    {
        foreach (var extension in new[] { ".txt", ".caption" })
        {
            var path = Path.ChangeExtension(image.Path, extension);
            if (!File.Exists(path)) continue;
            var lines = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
            if (lines.Count > 0) return lines;
        }
        return [image.Caption];
    }

    private static string? ReadCaption(string imagePath)
    {
        foreach (var extension in new[] { ".txt", ".caption" })
        {
            string path = System.IO.Path.ChangeExtension(imagePath, extension);
            if (File.Exists(path)) return File.ReadAllText(path).Replace("\r", "", StringComparison.Ordinal).Trim();
        }
        return null;
    }

    /// <summary>
    /// The batches of one epoch: every image repeated, shuffled with (seed, epoch), grouped by bucket, cut into batches
    /// of at most <paramref name="batchSize"/>, and the batches shuffled again. The count is the same every epoch.
    /// </summary>
    public IReadOnlyList<TrainingImage[]> EpochBatches(long seed, long epoch, int batchSize)
    {
        var items = Images.SelectMany(i => Enumerable.Repeat(i, i.Repeats)).ToList();
        var random = new StepRandom(seed, "epoch", epoch);
        random.Shuffle(items);
        var batches = new List<TrainingImage[]>();
        foreach (var group in items.GroupBy(i => i.Bucket).OrderBy(g => g.Key))
        {
            var list = group.ToList();
            for (int i = 0; i < list.Count; i += batchSize) batches.Add(list.Skip(i).Take(batchSize).ToArray());
        }
        random.Shuffle(batches);
        return batches;
    }
}

/// <summary>
/// The micro-batches of a run in order: micro-batch m is batch (m mod n) of epoch m / n, n being the batches per
/// epoch; each epoch's order (<see cref="TrainingDataset.EpochBatches"/>) is computed once, when it is reached.
/// </summary>
internal sealed class EpochBatchCursor(TrainingDataset dataset, long seed, int batchSize)
{
    private IReadOnlyList<TrainingImage[]>? _batches;
    private long _epoch = -1;

    public int BatchesPerEpoch { get; } = dataset.EpochBatches(seed, 0, batchSize).Count;

    public TrainingImage[] At(long micro)
    {
        long epoch = micro / BatchesPerEpoch;
        if (epoch != _epoch) (_batches, _epoch) = (dataset.EpochBatches(seed, epoch, batchSize), epoch);
        return _batches![(int)(micro % BatchesPerEpoch)];
    }
}
