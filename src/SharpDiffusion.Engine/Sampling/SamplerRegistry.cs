using SharpDiffusion.Engine.Sampling.Samplers;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// Samplers by A1111 display name ("DPM++ 2M") or k-diffusion alias ("dpmpp_2m"), case-insensitive. The old A1111
/// names with a " Karras" suffix ("DPM++ 2M Karras", "dpmpp_2m_karras") select the Karras schedule.
/// </summary>
public static class SamplerRegistry
{
    private static readonly Func<bool, Sampler>[] Factories =
    {
        _ => new EulerSampler(),
        _ => new EulerAncestralSampler(),
        _ => new HeunSampler(),
        a1111 => new Dpm2Sampler { DiscardNextToLastSigma = a1111 },
        a1111 => new Dpm2AncestralSampler { DiscardNextToLastSigma = a1111 },
        _ => new LmsSampler(),
        _ => new DpmPlusPlus2MSampler(),
        _ => new DpmPlusPlus2SAncestralSampler(),
        a1111 => new DdimSampler { A1111SkipsLastStep = a1111 },
    };

    private static readonly Sampler[] Prototypes = Factories.Select(f => f(false)).ToArray();

    /// <summary>A1111 display names, in A1111's order.</summary>
    public static IReadOnlyList<string> Names { get; } = Prototypes.Select(p => p.Name).ToArray();

    /// <summary>k-diffusion aliases, same order as <see cref="Names"/>.</summary>
    public static IReadOnlyList<string> Aliases { get; } = Prototypes.Select(p => p.Alias).ToArray();

    /// <summary>
    /// The sampler called <paramref name="name"/>. <paramref name="a1111SigmaQuirks"/>: apply A1111's
    /// sigma-list changes (DPM2/DPM2 a drop the next-to-last sigma, DDIM skips CompVis's last step); false gives plain
    /// k-diffusion / CompVis DDIM.
    /// </summary>
    public static Sampler Create(string name, bool a1111SigmaQuirks = true) => Resolve(name, a1111SigmaQuirks).Sampler;

    /// <summary>The sampler and, for names with a Karras suffix, the schedule type the name implies.</summary>
    public static (Sampler Sampler, ScheduleType? Schedule) Resolve(string name, bool a1111SigmaQuirks = true)
    {
        string key = Normalize(name);
        ScheduleType? schedule = null;
        if (key.EndsWith(" karras", StringComparison.Ordinal) || key.EndsWith("_karras", StringComparison.Ordinal))
        {
            key = key[..^7];
            schedule = ScheduleType.Karras;
        }
        for (int i = 0; i < Prototypes.Length; i++)
        {
            if (key == Normalize(Prototypes[i].Name) || key == Prototypes[i].Alias)
            {
                if (schedule is not null && Prototypes[i] is DdimSampler) break;
                return (Factories[i](a1111SigmaQuirks), schedule);
            }
        }
        throw new ArgumentException(
            $"unknown sampler '{name}'; valid names: {string.Join(", ", Names.Select(n => '"' + n + '"'))} (or {string.Join(", ", Aliases)})",
            nameof(name));
    }

    private static string Normalize(string name) => string.Join(' ', name.Trim().ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries));
}
