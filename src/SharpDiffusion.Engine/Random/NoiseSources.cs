namespace SharpDiffusion.Engine.Random;

/// <summary>Creates noise sources by A1111 name ("CPU", "NV"; case-insensitive, also "cpu"/"nv" as in <c>--rng</c>).</summary>
public static class NoiseSources
{
    public static IReadOnlyList<string> Names { get; } = new[] { "CPU", "NV" };

    public static NoiseSourceKind Parse(string name) => name.Trim().ToUpperInvariant() switch
    {
        "CPU" => NoiseSourceKind.Cpu,
        // A1111 "GPU" is CUDA torch.randn, which "NV" reproduces on the CPU.
        "NV" or "GPU" => NoiseSourceKind.Nv,
        _ => throw new ArgumentException($"unknown RNG source '{name}'; valid names: {string.Join(", ", Names)}", nameof(name)),
    };

    public static INoiseSource Create(NoiseSourceKind kind, long seed) => kind switch
    {
        NoiseSourceKind.Cpu => new TorchCpuNoise(seed),
        NoiseSourceKind.Nv => new PhiloxNoise(seed),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown RNG source"),
    };

    public static INoiseSource Create(string name, long seed) => Create(Parse(name), seed);
}
