namespace SharpDiffusion.Engine.Training;

/// <summary>kohya's caption options (train_util.py <c>process_caption</c>).</summary>
public sealed record CaptionOptions
{
    /// <summary>Shuffle the comma-separated tags after the first <see cref="KeepTokens"/>.</summary>
    public bool Shuffle { get; init; }

    /// <summary>How many leading tags stay in place (and are never dropped).</summary>
    public int KeepTokens { get; init; }

    /// <summary>Probability of training a sample with an empty caption.</summary>
    public double CaptionDropoutRate { get; init; }

    /// <summary>Probability of dropping each movable tag.</summary>
    public double TagDropoutRate { get; init; }
}

public static class CaptionProcessing
{
    /// <summary>
    /// kohya's order: whole-caption dropout first (→ ""), else split on ',' (trimmed), keep the first K tags, shuffle the
    /// rest if asked, drop each of the rest with the tag rate, and join with ", ".
    /// </summary>
    public static string Process(string caption, CaptionOptions options, StepRandom random)
    {
        if (options.CaptionDropoutRate > 0 && random.NextDouble() < options.CaptionDropoutRate) return "";
        if (!options.Shuffle && options.TagDropoutRate <= 0) return caption;
        var tags = caption.Split(',').Select(t => t.Trim()).ToList();
        int keep = Math.Min(Math.Max(options.KeepTokens, 0), tags.Count);
        var fixedTags = tags.Take(keep).ToList();
        var flexible = tags.Skip(keep).ToList();
        if (options.Shuffle) random.Shuffle(flexible);
        if (options.TagDropoutRate > 0) flexible = flexible.Where(_ => random.NextDouble() >= options.TagDropoutRate).ToList();
        return string.Join(", ", fixedTags.Concat(flexible));
    }
}
