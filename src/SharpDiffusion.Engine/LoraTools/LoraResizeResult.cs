namespace SharpDiffusion.Engine.LoraTools;

/// <summary>What <see cref="LoraResizer"/> wrote: every resized module, and how many other tensors were copied unchanged.</summary>
public sealed record LoraResizeResult(IReadOnlyList<ResizedModule> Modules, int CopiedTensors, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>Mean over modules of <see cref="ResizedModule.KeptEnergy"/>.</summary>
    public double MeanKeptEnergy => Modules.Count == 0 ? 1.0 : Modules.Average(m => m.KeptEnergy);
}
