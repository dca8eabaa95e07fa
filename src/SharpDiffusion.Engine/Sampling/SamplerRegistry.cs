using SharpDiffusion.Engine.Sampling.Samplers;

namespace SharpDiffusion.Engine.Sampling;

/// <summary>
/// The one place that knows sampler names, aliases, defaults and A1111's per-sampler quirks: samplers by A1111
/// display name ("DPM++ 2M SDE") or k-diffusion alias ("dpmpp_2m_sde"), case-insensitive, with A1111 1.10's
/// "Automatic" schedule and sigma-list changes when <c>a1111SigmaQuirks</c> is on. The old A1111 names with a
/// " Karras" suffix ("DPM++ 2M Karras", "dpmpp_2m_karras") select the Karras schedule.
/// </summary>
public static class SamplerRegistry
{
    /// <summary>A sampler factory: a1111 = apply A1111's Automatic schedule and sigma quirks.</summary>
    private static readonly Func<bool, Sampler>[] Factories =
    {
        a1111 => new DpmPlusPlus2MSampler { AutomaticSchedule = Automatic(a1111, ScheduleType.Karras) },
        a1111 => new DpmPlusPlusSdeSampler { AutomaticSchedule = Automatic(a1111, ScheduleType.Karras) },
        a1111 => new DpmPlusPlus2MSdeSampler { AutomaticSchedule = Automatic(a1111, ScheduleType.Exponential) },
        a1111 => new DpmPlusPlus2MSdeSampler { Heun = true, AutomaticSchedule = Automatic(a1111, ScheduleType.Exponential) },
        a1111 => new DpmPlusPlus2SAncestralSampler { AutomaticSchedule = Automatic(a1111, ScheduleType.Karras) },
        a1111 => new DpmPlusPlus3MSdeSampler { DiscardNextToLastSigma = a1111, AutomaticSchedule = Automatic(a1111, ScheduleType.Exponential) },
        _ => new EulerAncestralSampler(),
        _ => new EulerSampler(),
        _ => new LmsSampler(),
        _ => new HeunSampler(),
        a1111 => new Dpm2Sampler { DiscardNextToLastSigma = a1111, AutomaticSchedule = Automatic(a1111, ScheduleType.Karras) },
        a1111 => new Dpm2AncestralSampler { DiscardNextToLastSigma = a1111, AutomaticSchedule = Automatic(a1111, ScheduleType.Karras) },
        _ => new DpmFastSampler(),
        _ => new DpmAdaptiveSampler(),
        a1111 => new RestartSampler { AutomaticSchedule = Automatic(a1111, ScheduleType.Karras) },
        a1111 => new DdimSampler { A1111SkipsLastStep = a1111 },
        _ => new DdimCfgPlusPlusSampler(),
        _ => new PlmsSampler(),
        _ => new UniPcSampler(),
        _ => new LcmSampler(),
    };

    private static readonly Sampler[] Prototypes = Factories.Select(f => f(true)).ToArray();

    /// <summary>A1111 display names, in A1111's order.</summary>
    public static IReadOnlyList<string> Names { get; } = Prototypes.Select(p => p.Name).ToArray();

    /// <summary>k-diffusion aliases, same order as <see cref="Names"/>.</summary>
    public static IReadOnlyList<string> Aliases { get; } = Prototypes.Select(p => p.Alias).ToArray();

    /// <summary>
    /// The sampler called <paramref name="name"/>. <paramref name="a1111SigmaQuirks"/>: A1111's Automatic schedule
    /// per sampler and its sigma-list changes (DPM2/DPM2 a/3M SDE drop the next-to-last sigma, DDIM skips CompVis's
    /// last step); false gives plain k-diffusion / CompVis DDIM with the model-default schedule.
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

    /// <summary>
    /// What A1111 writes as "Schedule type" for <paramref name="samplerName"/> run with <paramref name="requested"/>
    /// (null = Automatic): the requested label, else the label of the sampler's Automatic choice, else "Automatic".
    /// </summary>
    public static string ScheduleLabel(string samplerName, ScheduleType? requested)
    {
        var (sampler, implied) = Resolve(samplerName);
        return ScheduleTypes.Label(requested ?? implied ?? sampler.AutomaticSchedule);
    }

    /// <summary>Infotext fields A1111 adds for a schedule type besides "Schedule type" (the Beta schedule's parameters).</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> ScheduleInfotextFields(ScheduleType? schedule) => schedule == ScheduleType.Beta
        ? new[] { new KeyValuePair<string, string>("Beta schedule alpha", "0.6"), new KeyValuePair<string, string>("Beta schedule beta", "0.6") }
        : Array.Empty<KeyValuePair<string, string>>();

    private static ScheduleType? Automatic(bool a1111, ScheduleType type) => a1111 ? type : null;

    private static string Normalize(string name) => string.Join(' ', name.Trim().ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries));
}
