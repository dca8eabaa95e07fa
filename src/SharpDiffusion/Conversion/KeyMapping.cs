namespace SharpDiffusion.Conversion;

/// <summary>The result of mapping a set of keys: the correspondences found and the keys with no counterpart.</summary>
public sealed record KeyMapping(IReadOnlyList<KeyCorrespondence> Correspondences, IReadOnlyList<string> Unmapped);
