namespace SharpDiffusion.Conversion;

/// <summary>The modules of a network file that match the model, and the keys that do not (to report to the user).</summary>
public sealed record NetworkResolution(IReadOnlyList<ResolvedNetworkModule> Modules, IReadOnlyList<string> Unused);
