namespace SharpDiffusion.Engine.LoraTools;

/// <summary>Progress of a LoRA tool: <paramref name="Done"/> of <paramref name="Total"/> steps of <paramref name="Stage"/> ("compare", "svd", "write").</summary>
public readonly record struct LoraToolProgress(string Stage, int Done, int Total, string? Module);
