using System.Globalization;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// The learning rate of optimizer step <c>s</c> (0-based). kohya's schedules are diffusers' <c>get_scheduler</c>
/// lambdas (a multiplier of the base rate, evaluated at the number of steps already taken); A1111's schedule text
/// <c>"0.005:100, 1e-3:1000, 1e-5"</c> means 0.005 for steps 0..100, 1e-3 for 101..1000, then 1e-5.
/// </summary>
public abstract class LearningRateSchedule
{
    public abstract double At(long step);

    public static readonly string[] Names = ["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts"];

    /// <summary>
    /// A named diffusers schedule (<see cref="Names"/>) over <paramref name="totalSteps"/> with <paramref name="warmupSteps"/>,
    /// or, when <paramref name="nameOrA1111"/> is a number or an A1111 "rate:step, ..." list, that rate schedule (base ignored).
    /// </summary>
    public static LearningRateSchedule Create(string nameOrA1111, double baseRate, long totalSteps, long warmupSteps = 0, int cycles = 1) =>
        nameOrA1111 switch
        {
            "constant" => new Diffusers(baseRate, _ => 1.0),
            "constant_with_warmup" => new Diffusers(baseRate, s => s < warmupSteps ? (double)s / Math.Max(1, warmupSteps) : 1.0),
            "linear" => new Diffusers(baseRate, s => s < warmupSteps ? (double)s / Math.Max(1, warmupSteps)
                : Math.Max(0.0, (double)(totalSteps - s) / Math.Max(1, totalSteps - warmupSteps))),
            "cosine" => new Diffusers(baseRate, s =>
            {
                if (s < warmupSteps) return (double)s / Math.Max(1, warmupSteps);
                double progress = (double)(s - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
                return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * 0.5 * 2.0 * progress)));
            }),
            "cosine_with_restarts" => new Diffusers(baseRate, s =>
            {
                if (s < warmupSteps) return (double)s / Math.Max(1, warmupSteps);
                double progress = (double)(s - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
                if (progress >= 1.0) return 0.0;
                return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * (cycles * progress % 1.0))));
            }),
            _ => A1111Schedule.Parse(nameOrA1111, totalSteps),
        };

    private sealed class Diffusers(double baseRate, Func<long, double> lambda) : LearningRateSchedule
    {
        public override double At(long step) => baseRate * lambda(step);
    }
}

/// <summary>A1111's <c>LearnRateScheduler</c>: "rate:end_step" pairs, the last rate without a step lasting to the end.</summary>
public sealed class A1111Schedule : LearningRateSchedule
{
    private readonly (double Rate, long EndStep)[] _pieces;

    private A1111Schedule((double, long)[] pieces) => _pieces = pieces;

    public IReadOnlyList<(double Rate, long EndStep)> Pieces => _pieces;

    /// <exception cref="FormatException">The text is not a rate list; the message says which part.</exception>
    public static A1111Schedule Parse(string text, long maxSteps)
    {
        var pieces = new List<(double, long)>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var pair = part.Split(':', StringSplitOptions.TrimEntries);
            if (pair.Length > 2 || !double.TryParse(pair[0], NumberStyles.Float, CultureInfo.InvariantCulture, out double rate) || rate <= 0)
                throw new FormatException($"learning rate '{part}' is not a positive number or rate:step (A1111 syntax \"0.005:100, 1e-3:1000, 1e-5\")");
            long end = maxSteps;
            if (pair.Length == 2 && !long.TryParse(pair[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out end))
                throw new FormatException($"learning rate '{part}': '{pair[1]}' is not a step number");
            pieces.Add((rate, end));
        }
        if (pieces.Count == 0) throw new FormatException("empty learning-rate schedule");
        return new A1111Schedule(pieces.ToArray());
    }

    /// <summary>A1111 advances to the next piece while the step is past the current end (inclusive ends); the last piece lasts.</summary>
    public override double At(long step)
    {
        foreach (var (rate, end) in _pieces)
            if (step <= end) return rate;
        return _pieces[^1].Rate;
    }
}
