namespace SharpDiffusion.Engine.LoraTools;

/// <summary>One LoRA module after resizing.</summary>
/// <param name="KeptEnergy">Sum of the kept squared singular values of up@down over the sum of all (1 = nothing lost).</param>
/// <param name="OldAlpha">The module's alpha, or null when it had none (scale 1).</param>
public sealed record ResizedModule(string Name, long OldRank, long NewRank, double? OldAlpha, double NewAlpha, double KeptEnergy);
