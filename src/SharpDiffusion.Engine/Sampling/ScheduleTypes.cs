namespace SharpDiffusion.Engine.Sampling;

/// <summary>Parses A1111 schedule-type names.</summary>
public static class ScheduleTypes
{
    public static IReadOnlyList<string> Names { get; } = new[] { "Automatic", "Karras", "Exponential" };

    public static ScheduleType Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "automatic" or "normal" or "default" => ScheduleType.Normal,
        "karras" => ScheduleType.Karras,
        "exponential" => ScheduleType.Exponential,
        _ => throw new ArgumentException($"unknown schedule type '{name}'; valid names: {string.Join(", ", Names)}", nameof(name)),
    };
}
