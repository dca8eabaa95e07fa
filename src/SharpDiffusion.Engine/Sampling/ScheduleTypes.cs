namespace SharpDiffusion.Engine.Sampling;

/// <summary>A1111 schedule-type labels and names ("SGM Uniform" / "sgm_uniform"), case-insensitive.</summary>
public static class ScheduleTypes
{
    private static readonly (ScheduleType Type, string Label, string Name)[] Table =
    {
        (ScheduleType.Uniform, "Uniform", "uniform"),
        (ScheduleType.Karras, "Karras", "karras"),
        (ScheduleType.Exponential, "Exponential", "exponential"),
        (ScheduleType.Polyexponential, "Polyexponential", "polyexponential"),
        (ScheduleType.SgmUniform, "SGM Uniform", "sgm_uniform"),
        (ScheduleType.KlOptimal, "KL Optimal", "kl_optimal"),
        (ScheduleType.AlignYourSteps, "Align Your Steps", "align_your_steps"),
        (ScheduleType.Simple, "Simple", "simple"),
        (ScheduleType.Normal, "Normal", "normal"),
        (ScheduleType.Ddim, "DDIM", "ddim"),
        (ScheduleType.Beta, "Beta", "beta"),
    };

    public const string AutomaticLabel = "Automatic";

    /// <summary>A1111's labels in its order, "Automatic" first.</summary>
    public static IReadOnlyList<string> Names { get; } = new[] { AutomaticLabel }.Concat(Table.Select(t => t.Label)).ToArray();

    /// <summary>Every schedule type as A1111 lists it: snake_case name and label, Automatic first.</summary>
    public static IReadOnlyList<(string Name, string Label)> All { get; } =
        new[] { ("automatic", AutomaticLabel) }.Concat(Table.Select(t => (t.Name, t.Label))).ToArray();

    /// <summary>The A1111 label ("SGM Uniform"); "Automatic" for null.</summary>
    public static string Label(ScheduleType? type) => type is null ? AutomaticLabel : Table.First(t => t.Type == type).Label;

    /// <summary>A label or name; null for "Automatic" (the sampler's own schedule).</summary>
    public static ScheduleType? Parse(string name)
    {
        string key = string.Join(' ', name.Trim().ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries));
        if (key is "automatic" or "default") return null;
        foreach (var (type, label, snake) in Table)
        {
            if (key == label.ToLowerInvariant() || key == snake) return type;
        }
        throw new ArgumentException(
            $"unknown schedule type '{name}'; valid names: {string.Join(", ", Names)} (or {string.Join(", ", Table.Select(t => t.Name))})", nameof(name));
    }
}
