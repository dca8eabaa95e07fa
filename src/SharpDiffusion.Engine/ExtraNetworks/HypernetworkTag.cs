namespace SharpDiffusion.Engine.ExtraNetworks;

/// <summary>A prompt's <c>&lt;hypernet:name:strength&gt;</c>; the strength defaults to 1 as in A1111.</summary>
public sealed record HypernetworkTag(string Name, double Strength);
